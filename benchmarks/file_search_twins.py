"""A paraphrase benchmark for file_search: twin documents about one named person.

Each person has two short biographies (two documents) that share the name and nothing else: a
different occupation, town and set of facts. Each document gets one question about one of its
facts, worded so that it shares no content word with its document except the person's name
(``shared_words`` checks it, as the benchmark does). A search must therefore use the name to find
the pair and the meaning of the question to pick the right twin; other people who share a fact
are distractors for the second part.

The corpus is split in two halves with disjoint people, and disjoint facts: ``TUNING`` is the
only half any weight or threshold of the search was chosen on; ``HELD_OUT`` was written at the
same time, before any tuning, and kept aside to report how the search holds on unseen questions.
Each half: 60 people, 120 documents, 120 questions. Deterministic (a fixed seed).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

# (statement, question): {p} is "She"/"He", {name} the person's full name.
TUNING_FACTS: list[tuple[str, str]] = [
    (
        "{p} keeps three hives of bees at the bottom of the orchard.",
        "Which insects does {name} raise for honey?",
    ),
    (
        "{p} plays the cello in a string quartet on Sunday evenings.",
        "What musical instrument does {name} perform with?",
    ),
    (
        "{p} ran the Berlin marathon twice, finishing in under four hours.",
        "Has {name} completed a long-distance footrace in Germany?",
    ),
    (
        "{p} is allergic to peanuts and carries an adrenaline pen.",
        "What food causes {name} a dangerous reaction?",
    ),
    (
        "{p} grew up on a sheep farm in Wales.",
        "Where did {name} spend childhood, among which livestock?",
    ),
    (
        "{p} speaks fluent Japanese after living in Osaka for six years.",
        "Which Asian language has {name} mastered?",
    ),
    (
        "{p} collects vintage fountain pens and owns more than two hundred.",
        "What writing tools does {name} hoard?",
    ),
    (
        "{p} sails a small wooden boat along the coast every summer.",
        "What vessel does {name} take out onto the sea?",
    ),
    (
        "{p} broke a leg skiing in the Alps at nineteen.",
        "What injury did {name} suffer on a winter mountain holiday?",
    ),
    (
        "{p} volunteers at an animal shelter, walking dogs on weekends.",
        "Where does {name} help out with rescued pets?",
    ),
    ("{p} bakes sourdough bread every morning before work.", "What loaf does {name} make at dawn?"),
    (
        "{p} studied astrophysics at university before changing career.",
        "Which science of stars and galaxies was {name}'s degree?",
    ),
    (
        "{p} owns a grey parrot that can whistle the national anthem.",
        "What talking bird lives with {name}?",
    ),
    (
        "{p} climbed Kilimanjaro to raise money for a children's hospital.",
        "Which African peak did {name} ascend for charity?",
    ),
    (
        "{p} writes detective novels under a pen name.",
        "What kind of crime fiction does {name} author secretly?",
    ),
    (
        "{p} is afraid of spiders and will not enter the cellar.",
        "Which eight-legged creatures frighten {name}?",
    ),
    ("{p} drives an old red tractor restored by hand.", "What farm vehicle has {name} fixed up?"),
    (
        "{p} married a schoolteacher from Dublin in 2009.",
        "Whom did {name} wed, and in which Irish city was the spouse from?",
    ),
    (
        "{p} grows orchids in a heated greenhouse.",
        "Which exotic flowers does {name} cultivate under glass?",
    ),
    (
        "{p} won a regional chess championship as a teenager.",
        "In which board game did {name} take a title when young?",
    ),
    (
        "{p} swims in the cold lake every day, even in January.",
        "Does {name} bathe outdoors through winter?",
    ),
    (
        "{p} restores antique clocks in a workshop above the garage.",
        "What old timepieces does {name} repair?",
    ),
    (
        "{p} is vegetarian and has not eaten meat for twenty years.",
        "Which diet has {name} followed for decades?",
    ),
    (
        "{p} paints watercolour landscapes of the moors.",
        "What artwork does {name} create with brushes?",
    ),
    (
        "{p} keeps a diary in which every entry is written in Latin.",
        "In what ancient tongue are {name}'s journals composed?",
    ),
    (
        "{p} rides a motorcycle to the office.",
        "How does {name} commute, on two wheels with an engine?",
    ),
    (
        "{p} lost the hearing in one ear after an explosion at a quarry.",
        "Why is {name} partly deaf?",
    ),
    (
        "{p} brews beer in the basement and sells it at the local market.",
        "What alcoholic drink does {name} produce at home?",
    ),
    ("{p} trained as a pilot and flies small planes for fun.", "Can {name} operate an aircraft?"),
    (
        "{p} knits sweaters for the grandchildren each winter.",
        "What woollen garments does {name} make for family?",
    ),
    (
        "{p} moved to Canada after winning a scholarship.",
        "Which North American country did {name} emigrate to?",
    ),
    (
        "{p} has two daughters who both became doctors.",
        "What profession did {name}'s children choose?",
    ),
    ("{p} sings in a church choir every Sunday.", "Where does {name} perform vocal music weekly?"),
    (
        "{p} keeps tropical fish in a large aquarium in the living room.",
        "What pets swim in a tank at {name}'s house?",
    ),
    (
        "{p} was born in a lighthouse where the father was the keeper.",
        "What unusual building was {name}'s birthplace?",
    ),
    (
        "{p} survived a shipwreck off the coast of Norway.",
        "What maritime disaster did {name} live through?",
    ),
]

HELD_OUT_FACTS: list[tuple[str, str]] = [
    (
        "{p} repairs violins for the city orchestra.",
        "What does {name} mend for symphony musicians?",
    ),
    (
        "{p} breeds racing pigeons in a loft behind the house.",
        "Which birds does {name} raise for competitions?",
    ),
    (
        "{p} fractured a wrist falling from a horse.",
        "What injury did {name} get in a riding accident?",
    ),
    (
        "{p} teaches evening classes in pottery.",
        "What craft with clay does {name} instruct at night?",
    ),
    (
        "{p} cycled from Lisbon to Istanbul in one summer.",
        "Which long journey did {name} make on a bike?",
    ),
    (
        "{p} is colour-blind and cannot tell green from red.",
        "What problem does {name} have with eyesight?",
    ),
    (
        "{p} plays the bagpipes at weddings.",
        "Which Scottish instrument does {name} perform at marriage ceremonies?",
    ),
    (
        "{p} spent a winter at a research station in Antarctica.",
        "Has {name} lived near the South Pole?",
    ),
    (
        "{p} owns a vineyard that produces white wine.",
        "What does {name}'s estate ferment from grapes?",
    ),
    (
        "{p} does stand-up comedy at a pub on Fridays.",
        "Where does {name} tell jokes to an audience?",
    ),
    (
        "{p} survived a lightning strike while hiking in Colorado.",
        "What bolt from a storm hit {name} on a mountain walk?",
    ),
    (
        "{p} keeps goats and makes cheese from their milk.",
        "What dairy product does {name} produce from farm animals?",
    ),
    ("{p} learned to juggle with five balls.", "Which circus skill has {name} acquired?"),
    (
        "{p} rows for a club on the river every dawn.",
        "What water sport does {name} practise early with a team?",
    ),
    ("{p} lost a fortune gambling in Monaco.", "How did {name} squander wealth at casinos?"),
    (
        "{p} builds model railways in the attic.",
        "What miniature trains does {name} assemble upstairs?",
    ),
    (
        "{p} dislikes flying and always travels by ferry or coach.",
        "Why does {name} avoid aeroplanes?",
    ),
    (
        "{p} speaks Finnish because the mother came from Helsinki.",
        "Which Nordic language does {name} know through family?",
    ),
    (
        "{p} once met the Pope during a visit to Rome.",
        "Which religious leader shook hands with {name} in Italy?",
    ),
    ("{p} writes poetry about the sea.", "What verse does {name} compose on the ocean?"),
    ("{p} has a tattoo of an anchor on the left arm.", "What ink design is on {name}'s skin?"),
    ("{p} coaches a youth football team.", "Which junior soccer squad does {name} train?"),
    (
        "{p} is diabetic and checks blood sugar four times a day.",
        "What chronic illness does {name} manage with insulin?",
    ),
    (
        "{p} grows giant pumpkins for the county fair.",
        "What enormous vegetables does {name} enter into a show?",
    ),
    (
        "{p} photographs owls at night in the forest.",
        "Which nocturnal birds does {name} capture with a camera?",
    ),
    (
        "{p} inherited a castle in Scotland from an uncle.",
        "What fortress did {name} receive from a relative?",
    ),
    ("{p} runs a bakery that sells croissants.", "What pastry shop does {name} operate?"),
    (
        "{p} was a goalkeeper for a professional hockey club.",
        "Which position did {name} play in an ice sport?",
    ),
    (
        "{p} memorised the digits of pi to a thousand places.",
        "What mathematical constant can {name} recite at length?",
    ),
    ("{p} sleeps only four hours a night.", "How little rest does {name} need?"),
    ("{p} rescued a child from a burning house.", "Whom did {name} save from a fire?"),
    (
        "{p} plays golf with the mayor every Saturday.",
        "Which sport with clubs and a putting green does {name} share with the town's leader?",
    ),
    (
        "{p} fostered eleven kittens last spring.",
        "How many young cats did {name} care for temporarily?",
    ),
    ("{p} designs jewellery from recycled silver.", "What rings and necklaces does {name} craft?"),
    ("{p} is deaf and communicates in sign language.", "How does {name} talk without hearing?"),
    (
        "{p} drove a taxi in New York for ten years.",
        "What cab job did {name} have in an American city?",
    ),
]

FIRST_NAMES = [
    "Ada",
    "Alma",
    "Anton",
    "Arlo",
    "Beata",
    "Bruno",
    "Cora",
    "Dario",
    "Edda",
    "Elio",
    "Esme",
    "Felix",
    "Greta",
    "Hugo",
    "Ilse",
    "Ivo",
    "Jonas",
    "Kira",
    "Lars",
    "Lena",
    "Lior",
    "Mara",
    "Milo",
    "Nadia",
    "Nils",
    "Odile",
    "Oren",
    "Petra",
    "Quinn",
    "Rafael",
    "Rosa",
    "Sami",
    "Selma",
    "Teo",
    "Tilda",
    "Ugo",
    "Vera",
    "Viggo",
    "Wanda",
    "Yusuf",
    "Zora",
    "Aurel",
    "Bianca",
    "Cosmo",
    "Dagny",
    "Emil",
    "Fenna",
    "Gideon",
    "Hedda",
]
LAST_NAMES = [
    "Ambrose",
    "Bellweather",
    "Castellan",
    "Drummond",
    "Everly",
    "Falkner",
    "Grisham",
    "Holloway",
    "Ingram",
    "Jessop",
    "Kettering",
    "Lindqvist",
    "Marchetti",
    "Northcott",
    "Ostrander",
    "Pemberton",
    "Quartermain",
    "Ravensworth",
    "Sandoval",
    "Thistlewood",
    "Underhill",
    "Vantongeren",
    "Whitcombe",
    "Yardley",
    "Zabrowski",
    "Abernathy",
    "Blackwood",
    "Carrow",
    "Dunmore",
    "Ellsworth",
    "Fairbairn",
    "Galloway",
    "Hargreave",
    "Iverson",
    "Jardine",
    "Kingsley",
    "Lockhart",
    "Montague",
    "Nettleton",
    "Orchard",
    "Prescott",
    "Redfern",
    "Stanhope",
    "Tremaine",
    "Upshaw",
    "Villiers",
    "Wakefield",
    "Ashdown",
    "Brightwell",
    "Coldwater",
]
OCCUPATIONS = [
    "an accountant",
    "a carpenter",
    "a nurse",
    "a librarian",
    "a plumber",
    "an architect",
    "a pharmacist",
    "a lawyer",
    "an electrician",
    "a journalist",
    "a dentist",
    "a translator",
    "a surveyor",
    "a florist",
    "a locksmith",
    "an optician",
    "a tailor",
    "a veterinarian",
    "a geologist",
    "a butcher",
]
TOWNS = [
    "Leeds",
    "Bergen",
    "Porto",
    "Ghent",
    "Tampere",
    "Lyon",
    "Utrecht",
    "Graz",
    "Bilbao",
    "Aarhus",
    "Turin",
    "Cork",
    "Brno",
    "Nantes",
    "Malmo",
    "Basel",
    "Gdansk",
    "Split",
    "Trieste",
    "Galway",
]

PEOPLE_PER_HALF = 60
FACTS_PER_DOCUMENT = 3
# What the corpus check calls a function word, kept apart from the engine's STOP_WORDS: a change
# to search must not loosen the rule that a question shares no content word with its answer.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "has",
        "had",
        "been",
        "she",
        "he",
        "her",
        "his",
        "him",
    ]
)


def stems(text: str) -> set[str]:
    """Content words, crudely stemmed (the same rule as the labelled corpus's check)."""
    words = (w for w in re.findall(r"\w+", text.lower()) if w not in _STOP)
    return {re.sub(r"(ing|ed|es|s)$", "", w)[:5] for w in words}


def shared_words(question: str, document: str, name: str) -> set[str]:
    """Content words a question shares with its document, the person's name aside."""
    return stems(question) & stems(document) - stems(name)


@dataclass
class Half:
    docs: dict[str, str] = field(default_factory=dict)
    questions: list[tuple[str, str]] = field(default_factory=list)
    """(question, the document that answers it)"""
    names: dict[str, str] = field(default_factory=dict)
    """document -> the person it is about"""


def _half(facts: list[tuple[str, str]], people: list[str], seed: int) -> Half:
    rng = random.Random(seed)
    half = Half()
    for person, name in enumerate(people):
        pronoun = rng.choice(["She", "He"])
        used: set[int] = set()
        for twin in "ab":
            while True:  # facts, occupation and town that share no word with the question
                chosen = rng.sample(sorted(set(range(len(facts))) - used), FACTS_PER_DOCUMENT)
                question = facts[chosen[0]][1].format(name=name)
                intro = f"{name} is {rng.choice(OCCUPATIONS)} in {rng.choice(TOWNS)}."
                body = " ".join(facts[f][0].format(p=pronoun) for f in rng.sample(chosen, 3))
                text = f"{intro} {body}"
                if not shared_words(question, text, name):
                    break
            used.update(chosen)
            filename = f"p{person:02d}-{name.split()[-1].lower()}-{twin}.md"
            half.docs[filename] = text
            half.names[filename] = name
            half.questions.append((question, filename))
    return half


def _people(rng: random.Random) -> list[str]:
    names: list[str] = []
    while len(names) < 2 * PEOPLE_PER_HALF:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in names:
            names.append(name)
    return names


_names = _people(random.Random(19))
TUNING = _half(TUNING_FACTS, _names[:PEOPLE_PER_HALF], seed=1)
HELD_OUT = _half(HELD_OUT_FACTS, _names[PEOPLE_PER_HALF:], seed=2)
