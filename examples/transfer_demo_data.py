"""The data of the offline transfer demo: a generated maintenance archive (source) and work requests (target).

Everything here is invented and generated from one seed. The domain is the machine fleet of a
fictional plant: each machine has eight subsystems, and each subsystem goes by four plain names
("hydraulic pump", "chiller") and eight in-house ones that no public model can know: nicknames
("Snowy", "the Owl", "the buzzbox") and invented part names ("Pellam bearing", "Koll contactor"),
plus four-digit alarm codes whose first two digits name the subsystem (41xx: hydraulics).

- Source task (``data/source/train.csv``): a fault-log archive, 8 classes x 250, labelled by the
  subsystem at fault, whatever the symptom (physical faults, routine requests, safety events).
- Target task (``data/raw/{train,test}.csv``): work requests, 5 classes x (80 + 40), labelled by
  who takes them: four crews, each owning two subsystems, take its faults and routine requests;
  ``safety_officer`` takes any safety symptom (smoke, shock, near miss) on any subsystem.

So the target labels depend on the same concepts as the source labels, grouped another way and
crossed with the kind of symptom. Texts are built from dozens of frames with optional openings,
alarm codes, context, a second name of the same subsystem, a name of another subsystem said to be
fine (a distractor), afterthoughts that share words across labels, closings, dropped articles,
lowercase and typos, so that no single word decides a label and a few examples per class cover
only some of each crew's sixteen names. Every text is unique across all three tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Subsystem:
    """One subsystem of every machine: the names it goes by and the first two digits of its alarm codes."""

    plain: tuple[str, ...]
    jargon: tuple[str, ...]
    code_prefix: int


SUBSYSTEMS: dict[str, Subsystem] = {
    "hydraulics": Subsystem(
        ("hydraulic pump", "press ram", "oil reservoir", "hydraulic hose"),
        ("Brisk pump", "quillon ram", "V-stack", "Mercer block", "bluehose", "fat jack", "Drossel manifold", "HPU-9"),
        41,
    ),
    "cooling": Subsystem(
        ("chiller", "coolant pump", "heat exchanger", "cooling fan"),
        ("Frostbox", "Glaze loop", "icebox", "Veer coil", "Snowy", "Marrow line", "TC-3 manifold", "Halden fan"),
        52,
    ),
    "pneumatics": Subsystem(
        ("air compressor", "gripper", "vacuum cup", "air line"),
        ("Puffer", "Clasp jaws", "Wren manifold", "lungs", "Bellow bank", "sucker plate", "Kite valve", "KV-12 head"),
        27,
    ),
    "conveyance": Subsystem(
        ("conveyor belt", "parts feeder", "indexer", "roller bed"),
        ("Drummond belt", "Skelly feeder", "river", "carousel", "Pike indexer", "trundle bed", "snake", "Gantry 2"),
        35,
    ),
    "drives": Subsystem(
        ("main drive", "servo amplifier", "power supply", "main breaker"),
        (
            "buzzbox",
            "Orrin pack",
            "Lumen drive",
            "Tamsin rectifier",
            "brickpack",
            "Koll contactor",
            "hum cabinet",
            "PX-7 rail",
        ),
        63,
    ),
    "controls": Subsystem(
        ("PLC", "HMI screen", "machine controller", "I/O card"),
        (
            "Abacus",
            "brain rack",
            "Loom runtime",
            "Quill panel",
            "Cinder card",
            "Harrow scheduler",
            "Vela server",
            "Nib bus",
        ),
        74,
    ),
    "spindle": Subsystem(
        ("spindle", "spindle bearing", "tool changer", "grease pump"),
        ("Auger head", "Pellam bearing", "Crown", "Darrow chuck", "greaser", "Spool arbor", "mill nose", "Oiler 5"),
        18,
    ),
    "vision": Subsystem(
        ("inspection camera", "laser gauge", "proximity sensor", "barcode scanner"),
        ("Owl", "Argus head", "Lark gauge", "eye bar", "Merrow probe", "Tern scanner", "Gleam strobe", "peeper"),
        86,
    ),
}

CREWS: dict[str, tuple[str, str]] = {
    "fluids_crew": ("hydraulics", "cooling"),
    "motion_crew": ("pneumatics", "conveyance"),
    "electrical_crew": ("drives", "controls"),
    "precision_crew": ("spindle", "vision"),
}
SAFETY_LABEL = "safety_officer"
TARGET_LABELS: tuple[str, ...] = (*CREWS, SAFETY_LABEL)
# Rows per class: the learning curve goes to 64 per class and takes its validation split from those.
SOURCE_PER_CLASS, TRAIN_PER_CLASS, TEST_PER_CLASS = 250, 80, 40

# Symptoms by kind: (verb phrases after "the <part>", noun phrases). All but "safety" go to the part's crew.
SYMPTOMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "leak": (
        (
            "is leaking",
            "is weeping fluid",
            "has a drip under it",
            "is losing fluid",
            "left a puddle on the floor",
            "is spitting fluid out the side",
            "is wet all round the fittings",
        ),
        ("a leak", "a slow drip", "fluid loss", "a weep at the fitting", "a puddle"),
    ),
    "heat": (
        (
            "is running hot",
            "is overheating",
            "is too hot to touch",
            "keeps hitting its temperature limit",
            "cooks after an hour of running",
            "gets really warm by mid shift",
        ),
        ("high temperature", "overheating", "heat build-up", "a hot spot", "a temperature warning that is real"),
    ),
    "noise": (
        (
            "is making a grinding noise",
            "is rattling",
            "squeals on startup",
            "is vibrating badly",
            "knocks every cycle",
            "sounds rough",
            "has started to chatter",
            "hums louder than normal",
        ),
        ("a grinding noise", "bad vibration", "a loud knock", "chatter", "a squeal", "a new rattle"),
    ),
    "stall": (
        ("jammed", "is stuck", "stopped dead", "won't move", "seized up", "froze mid-cycle", "locks up under load"),
        ("a jam", "a seized part", "a hard stop", "no movement at all", "a lock-up"),
    ),
    "weak": (
        (
            "is losing pressure",
            "is slow",
            "has no power behind it",
            "is sluggish",
            "can't hold position",
            "struggles under load",
            "takes ages to come up to speed",
        ),
        ("low pressure", "loss of speed", "weak output", "sluggish response", "lost holding force"),
    ),
    "trip": (
        (
            "keeps cutting out",
            "trips every few minutes",
            "drops out randomly",
            "faults intermittently",
            "keeps rebooting",
            "goes offline now and then",
            "loses comms every hour or so",
        ),
        ("intermittent trips", "random dropouts", "repeated faults", "a fault every few cycles", "comms dropouts"),
    ),
    "drift": (
        (
            "is out of tolerance",
            "is drifting",
            "reads wrong",
            "is off by a couple of tenths",
            "won't hold calibration",
            "gives bad readings",
            "is putting parts out of spec",
        ),
        ("drift", "bad readings", "parts out of spec", "a calibration error", "a repeatability problem"),
    ),
    "damage": (
        (
            "is cracked",
            "is worn out",
            "has a broken mount",
            "looks bent",
            "is chewed up",
            "is falling apart",
            "got hit by the forklift",
        ),
        ("a crack", "visible wear", "a broken bracket", "physical damage", "a snapped bolt"),
    ),
    "safety": (
        (
            "is smoking",
            "threw sparks",
            "gave an operator a shock",
            "caught fire for a moment",
            "kept moving after the e-stop was hit",
            "moved while the guard was open",
            "nearly took someone's hand off",
            "sprayed hot oil at an operator",
            "smells like burning plastic",
            "started up with someone inside the cell",
            "has its interlock bypassed with a cable tie",
            "burned an operator's arm",
            "is arcing inside the cover",
        ),
        (
            "smoke",
            "sparks",
            "an electric shock",
            "a small fire",
            "a near miss",
            "an injury",
            "a burning smell",
            "an interlock bypass",
            "uncommanded motion",
            "an e-stop failure",
            "a burn to an operator",
        ),
    ),
    "routine": (
        (
            "is showing a false alarm",
            "just needs an alarm reset",
            "needs its setpoint bumped",
            "needs the recipe switched to the new part",
            "is showing a warning but runs fine",
            "needs its counter zeroed",
            "has an alarm that clears itself",
            "needs the limit raised a little",
            "needs the shift report exported",
            "wants its warning acknowledged from upstairs",
            "needs the new offsets loaded",
            "has a stale message on it",
        ),
        (
            "a nuisance alarm",
            "a false alarm",
            "a stale warning",
            "a setpoint change",
            "a recipe change",
            "a counter reset",
            "an alarm that won't clear from the local panel",
            "a parameter tweak",
            "a warning with no fault behind it",
            "a schedule change",
        ),
    ),
}
CREW_KINDS = tuple(kind for kind in SYMPTOMS if kind != "safety")

MACHINES = (
    "press 4",
    "press 11",
    "cell 7",
    "cell 12",
    "line B",
    "line C",
    "the T-800",
    "T-640 #2",
    "Old Bessie",
    "the Big Green",
    "station 3",
    "station 9",
    "the east press",
    "bay 6",
    "Torvik 3",
    "the night cell",
    "press 2",
    "cell 15",
    "the new Torvik",
    "line A",
    "the blue press",
    "station 14",
    "bay 2",
    "Rosie",
)
NAMES = ("Dana", "Marek", "Priya", "Tom", "Ines", "Kwame", "Lotte", "Sam", "Yusuf", "Bea", "Jonas", "Mei")

# Frames: {p} part, {m} machine, {v} verb phrase, {n} noun phrase.
REQUEST_FRAMES = (
    "{p} on {m} {v}.",
    "Can someone look at {m}? {p} {v}.",
    "Operator reports {p} {v}.",
    "We have {n} at {p} on {m}.",
    "Need help on {m}, {p} {v}.",
    "Please send someone, {p} {v} on {m}.",
    "{p} {v} again, {m}.",
    "Heads up: {n} on {m} ({p}).",
    "Reporting {n} at {p}, {m}.",
    "Noticed {n} around {p} on {m} this morning.",
    "{p} {v}. Machine is {m}.",
    "Work request: {p}, {m}. Problem: {n}.",
    "Issue with {p} on {m}: it {v}.",
    "Is anyone free? {p} on {m} {v}.",
    "Looks like {p} {v}.",
    "Third time this week {p} {v}.",
    "Not sure who owns this but {p} on {m} {v}.",
    "{m} again. This time {p} {v}.",
    "Request for {m}: {n}, and it seems to come from {p}.",
    "As of this shift {p} {v}.",
    "We think {p} {v} on {m}.",
    "Could you check {p}? It {v}.",
    "Raising this for {m} - {p} {v}.",
    "{m} needs attention, {p} {v}.",
)
LOG_FRAMES = (
    "[{s}] {m} - {p} {v}",
    "{m} / {p} / {n}",
    "shift log: {p} {v} ({m})",
    "{t} {m}: {n} at {p}",
    "{m} {p}: {n}",
    "Alarm on {m}, traced to {p}: {n}.",
    "Found {p} {v} during rounds on {m}.",
    "Logged {n} on {p}, {m}.",
    "Walkdown {m}: {p} {v}.",
    "{p} ({m}) {v}.",
    "{t} - {p} {v}, {m}",
    "[{s}] {n}, {p}, {m}",
    "Entry {t}: {m}, {p} {v}.",
    "{m}: {p} {v}; noted by {w}.",
)
CODE_CLAUSES = ("Alarm {c}.", "Code {c} on the screen.", "HMI shows {c}.", "(fault {c})", "Error E{c}.", "alm {c}")
OPENINGS = (
    "Morning,",
    "Hi team,",
    "FYI",
    "Night shift here.",
    "Quick one:",
    "URGENT",
    "Not urgent but",
    "Hello,",
    "Hey",
    "Sorry to bother,",
    "Update:",
    "From {w}:",
)
CLOSINGS = (
    "Thanks",
    "pls advise",
    "Raised by {w}.",
    "Can wait till Monday.",
    "Photos in the shared folder.",
    "Cheers",
    "Let me know.",
    "{w} is on site if you need more info.",
    "Ta.",
    "Will keep an eye on it.",
)
CONTEXTS = (
    "since the retool on Tuesday",
    "after the weekend shutdown",
    "during second shift",
    "right after startup",
    "only on the big parts",
    "since the vendor visit",
    "when the bay doors are open",
    "after lunch break",
    "since the last PM",
    "on every third cycle",
    "since we moved it",
    "when running the heavy recipe",
)
HEALTHY = (
    "{o} looks fine though.",
    "Already checked {o}, it's ok.",
    "Not {o} this time.",
    "{o} was swapped last month.",
    "{o} is fine.",
    "Ignore the old note about {o}.",
    "{o} tested good.",
)
SUSPECTS = (
    "Probably {q} again.",
    "Might be {q}.",
    "Suspect {q}.",
    "Could be {q} behind it.",
    "Check {q} too.",
    "Last time it was {q}.",
)
# Afterthoughts by kind of symptom; they share words across labels ("reset", "smoke", "nobody hurt").
HEDGES = {
    "fault": (
        "Tried a reset from the panel, didn't help.",
        "Not a false alarm, checked it twice.",
        "Nobody hurt.",
        "No smoke or anything.",
    ),
    "routine": (
        "No leak, no noise, nothing physical.",
        "Machine runs fine otherwise.",
        "Nobody needs to come down.",
        "Nothing is broken as far as we can see.",
    ),
    "safety": (
        "Machine is locked out now.",
        "Operator is ok but shaken.",
        "Area taped off.",
        "Reported to the supervisor.",
    ),
}
SHIFTS = ("A", "B", "C", "night", "day", "late")
# How often each optional piece appears; tuned with benchmarks/transfer_demo_check.py on train.csv only.
PLAIN_SHARE = 0.3  # of part mentions that use a plain name rather than an in-house one
NAME_ZIPF = 0.5  # earlier names in each list are mentioned more often, as in real traffic
ARTICLE_DROP = 0.15
CONTEXT_RATE = 0.2
CODE_RATE = 0.3
SUSPECT_RATE = 0.4  # a second name of the same subsystem
HEALTHY_RATE = 0.15  # a name of another subsystem, said to be fine
HEDGE_RATE = 0.15
OPENING_RATE = 0.2
CLOSING_RATE = 0.2
TYPO_RATE = 0.02  # per word
LOWERCASE_RATE = 0.2
SENTENCE_START = re.compile(r"(?<=[.?!] )[a-z]")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _part(rng: np.random.Generator, subsystem: str) -> str:
    names = SUBSYSTEMS[subsystem]
    pool = names.plain if rng.random() < PLAIN_SHARE else names.jargon
    weights = 1.0 / np.arange(1, len(pool) + 1) ** NAME_ZIPF
    name = pool[int(rng.choice(len(pool), p=weights / weights.sum()))]
    return name if rng.random() < ARTICLE_DROP else f"the {name}"


def _typos(rng: np.random.Generator, text: str) -> str:
    words = text.split(" ")
    for index, word in enumerate(words):
        if len(word) > 3 and word.isalpha() and rng.random() < TYPO_RATE:
            at = int(rng.integers(1, len(word) - 1))
            edit = int(rng.integers(3))
            if edit == 0:
                word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
            elif edit == 1:
                word = word[:at] + word[at + 1 :]
            else:
                word = word[:at] + word[at] + word[at:]
            words[index] = word
    return " ".join(words)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def write_ticket(rng: np.random.Generator, subsystem: str, kind: str, log_share: float) -> str:
    """One ticket about ``subsystem`` with a symptom of ``kind`` (a SYMPTOMS key); ``log_share`` of them log-style."""
    verbs, nouns = SYMPTOMS[kind]
    frame = _pick(rng, LOG_FRAMES if rng.random() < log_share else REQUEST_FRAMES)
    fields = {
        "p": _part(rng, subsystem),
        "m": _pick(rng, MACHINES),
        "v": _pick(rng, verbs),
        "n": _pick(rng, nouns),
        "s": _pick(rng, SHIFTS),
        "t": f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
        "w": _pick(rng, NAMES),
    }
    core = frame.format(**fields)
    if rng.random() < CONTEXT_RATE:
        context = _pick(rng, CONTEXTS)
        core = f"{core.rstrip('.')} {context}." if core.endswith(".") else f"{core} {context}"
    pieces = [_sentence(core)]
    if rng.random() < CODE_RATE:
        code = SUBSYSTEMS[subsystem].code_prefix * 100 + int(rng.integers(100))
        pieces.append(_pick(rng, CODE_CLAUSES).format(c=code))
    if rng.random() < SUSPECT_RATE:
        suspect = _part(rng, subsystem)
        if suspect.removeprefix("the ") != fields["p"].removeprefix("the "):
            pieces.append(_sentence(_pick(rng, SUSPECTS).format(q=suspect)))
    if rng.random() < HEALTHY_RATE:
        other = _pick(rng, tuple(name for name in SUBSYSTEMS if name != subsystem))
        pieces.append(_sentence(_pick(rng, HEALTHY).format(o=_part(rng, other))))
    if rng.random() < HEDGE_RATE:
        pieces.append(_pick(rng, HEDGES.get(kind, HEDGES["fault"])))
    if rng.random() < OPENING_RATE:
        opening = _pick(rng, OPENINGS).format(w=fields["w"])
        if opening[-1].isalpha():
            pieces[0] = pieces[0][:1].lower() + pieces[0][1:]
        pieces.insert(0, opening)
    if rng.random() < CLOSING_RATE:
        pieces.append(_pick(rng, CLOSINGS).format(w=fields["w"]))
    text = _typos(rng, SENTENCE_START.sub(lambda match: match.group(0).upper(), " ".join(pieces)))
    return text.lower() if rng.random() < LOWERCASE_RATE else text


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def _unique_rows(
    rng: np.random.Generator, per_class: int, labels: tuple[str, ...], draw: Callable[[str], str], seen: set[str]
) -> list[tuple[str, str]]:
    rows = []
    for label in labels:
        made = 0
        while made < per_class:
            text = draw(label)
            if _normalised(text) not in seen:
                seen.add(_normalised(text))
                rows.append((text, label))
                made += 1
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def source_rows(rng: np.random.Generator, per_class: int, seen: set[str]) -> list[tuple[str, str]]:
    """The fault-log archive: ``per_class`` (text, subsystem) rows per subsystem, any symptom."""
    kinds = tuple(SYMPTOMS)
    weights = np.array([2.0 if kind in ("safety", "routine") else 1.0 for kind in kinds])

    def draw(subsystem: str) -> str:
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        return write_ticket(rng, subsystem, kind, log_share=0.7)

    return _unique_rows(rng, per_class, tuple(SUBSYSTEMS), draw, seen)


def target_rows(rng: np.random.Generator, per_class: int, seen: set[str]) -> list[tuple[str, str]]:
    """Work requests: ``per_class`` (text, who takes it) rows per target label."""

    def draw(label: str) -> str:
        if label == SAFETY_LABEL:
            return write_ticket(rng, _pick(rng, tuple(SUBSYSTEMS)), "safety", log_share=0.3)
        return write_ticket(rng, _pick(rng, CREWS[label]), _pick(rng, CREW_KINDS), log_share=0.3)

    return _unique_rows(rng, per_class, TARGET_LABELS, draw, seen)


def generate(
    seed: int,
    source_per_class: int = SOURCE_PER_CLASS,
    train_per_class: int = TRAIN_PER_CLASS,
    test_per_class: int = TEST_PER_CLASS,
) -> dict[str, list[tuple[str, str]]]:
    """The three tables, keyed "source", "train" and "test", as (text, label) rows; no text appears twice."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    return {
        "source": source_rows(rng, source_per_class, seen),
        "train": target_rows(rng, train_per_class, seen),
        "test": target_rows(rng, test_per_class, seen),
    }
