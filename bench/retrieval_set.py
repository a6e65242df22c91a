"""A small labeled retrieval set of personal memories: queries, the memories they should find, distractors.

Written for this project (not taken from a dataset): 78 memories one person might keep, across health,
family, home, work, money, travel, food, pets, hobbies and plans. Most topics hold several memories that
share words but answer different questions (peanut allergy vs favourite peanut butter; the sister's
birthday vs her new job), so a query can only be answered by meaning. Queries are phrased the way a user
asks, mostly without the memory's key words. Each query lists the memories that answer it (1 or 2).

Used by bench/embeddings.py (recall@5 of the local model vs the hash stand-in) and by
tests/relayer/test_retrieval_quality.py (the local model's recall@5 floor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabeledQuery:
    text: str
    relevant: tuple[str, ...]  # memory ids that answer it


MEMORIES: dict[str, str] = {
    # health
    "peanut-allergy": "I'm severely allergic to peanuts and always carry an EpiPen in my backpack.",
    "peanut-butter": "My favourite breakfast is toast with crunchy almond butter and sliced banana.",
    "blood-type": "My blood type is O negative, which makes me a universal donor.",
    "dentist": "Dentist appointment with Dr. Okafor on March 14 at 9:30, remember to floss beforehand.",
    "knee": "I tore my left meniscus skiing in 2019, so I avoid running on concrete.",
    "glasses": "My eyeglass prescription is -2.25 in both eyes, renewed last October.",
    "migraine": "Bright fluorescent light and red wine tend to trigger my migraines.",
    "vitamin": "The doctor told me to take 2000 IU of vitamin D every morning during winter.",
    # family
    "sister-birthday": "My sister Maya's birthday is on the 3rd of August; she loves orchids.",
    "sister-job": "Maya just started a new job as a paediatric nurse at St. Mary's hospital.",
    "dad-surgery": "Dad had a hip replacement in June and is doing physiotherapy twice a week.",
    "mom-phone": "Mom prefers a phone call on Sunday evenings rather than text messages.",
    "nephew": "My nephew Leo is obsessed with dinosaurs, especially the stegosaurus.",
    "anniversary": "Our wedding anniversary is September 21st; we got married at the lake house.",
    "grandma-recipe": "Grandma's lemon cake recipe uses buttermilk and a whole tablespoon of zest.",
    "kids-school": "The kids' school pickup is at 3:15 on weekdays, except Wednesdays at 1:45.",
    # home
    "wifi": "The guest wifi network is called Bluebird and the password is on the fridge magnet.",
    "spare-key": "The spare house key is hidden under the third flowerpot by the back door.",
    "boiler": "The boiler was serviced in November; the engineer said the pressure valve is getting old.",
    "bins": "Recycling is collected every other Tuesday, general waste every Friday morning.",
    "landlord": "Our landlord, Mr. Petrov, wants rent transferred by the 1st of each month.",
    "paint": "The living room walls are painted Farrow & Ball Setting Plaster, in matt finish.",
    "plants": "The fiddle leaf fig needs watering once a week and hates being moved.",
    "alarm-code": "The burglar alarm code was changed to the year we moved in plus one.",
    # work
    "manager": "My manager is Priya; our one-to-one is every Thursday at 11.",
    "promotion": "I asked for a promotion to senior engineer; the decision comes after the Q3 review.",
    "conference": "I'm giving a talk about database migrations at the Berlin conference in October.",
    "laptop": "My work laptop is a 14-inch ThinkPad; IT ticket 4471 is open for its broken hinge.",
    "commute": "I take the 7:52 train to work and usually sit in the quiet carriage.",
    "deadline": "The payments API redesign is due to the client at the end of next month.",
    "coworker-lunch": "Tomás from the data team always suggests the Vietnamese place for team lunches.",
    "remote": "I work from home on Mondays and Fridays; the office days are Tuesday to Thursday.",
    # money
    "savings": "I'm saving 500 a month towards a deposit for a flat, aiming to buy in two years.",
    "pension": "My pension contributions are 8 percent, matched by my employer up to 5 percent.",
    "car-insurance": "Car insurance renews on January 9th with Lumen; last year it cost 612.",
    "tax": "I need to file my self-assessment tax return before the end of January.",
    "subscription": "I cancelled the streaming subscription I never watched; it was charging 13 a month.",
    "loan": "I lent my friend Sam 300 for his van repair; he'll pay it back in spring.",
    "budget": "Our grocery budget is about 120 a week for the whole family.",
    "bank": "My bank changed its app, and transfers over 1000 now need approval on my phone.",
    # travel
    "passport": "My passport expires in May 2027, so I must renew it before the summer trip.",
    "japan-trip": "We're planning two weeks in Japan next April to see the cherry blossoms.",
    "seat": "I always book an aisle seat on long flights because my legs get restless.",
    "lisbon": "In Lisbon we loved the little seafood restaurant near the Alfama viewpoint.",
    "frequent-flyer": "My frequent flyer number for the airline is stored in the travel folder of my email.",
    "jetlag": "Jet lag hits me hardest flying east; melatonin on the first night helps.",
    "camping": "The tent has a torn zip on the rain fly that needs fixing before any camping trip.",
    "visa": "For the US conference I need an ESTA approved at least 72 hours before departure.",
    # food
    "vegetarian": "My partner Alex has been vegetarian for ten years but eats eggs and cheese.",
    "coffee": "I drink my coffee as a flat white with oat milk, no sugar.",
    "spicy": "I can't handle very spicy food; medium heat is my limit at curry houses.",
    "bakery": "The bakery on Elm Street sells the best sourdough, but it's sold out by 10am.",
    "wine": "At the tasting I liked a Portuguese Alvarinho, crisp and a little salty.",
    "lactose": "Alex is also lactose intolerant, so hard cheeses are fine but milk is not.",
    "meal-prep": "On Sundays I cook a big pot of lentil soup to take for lunch during the week.",
    "restaurant-birthday": "For my birthday dinner I booked the Italian restaurant with the garden terrace.",
    # pets
    "dog-vet": "Our dog Biscuit is due for his rabies booster at the vet in February.",
    "dog-food": "Biscuit eats grain-free salmon kibble, two scoops morning and evening.",
    "cat-sitter": "When we travel, our neighbour Hannah feeds the cat and changes the litter.",
    "dog-walker": "The dog walker comes at noon on office days and charges 15 per walk.",
    "cat-meds": "The cat takes half a thyroid tablet with wet food every evening.",
    "dog-fear": "Biscuit is terrified of fireworks, so we keep him inside on bonfire night.",
    # hobbies
    "guitar": "I'm learning fingerstyle guitar and practising 'Blackbird' every evening.",
    "running": "I want to run a half marathon under two hours by the end of the year.",
    "book-club": "Book club meets on the last Wednesday of the month; we're reading 'Piranesi'.",
    "chess": "My online chess rating reached 1450 after I started studying endgames.",
    "pottery": "I signed up for a Saturday morning pottery class at the community centre.",
    "photography": "My camera is a Fujifilm X-T30 and my favourite lens is the 35mm f/2.",
    "garden": "The tomatoes did badly this summer; next year I'll plant them against the south wall.",
    "languages": "I practise Spanish for fifteen minutes a day and can hold basic conversations now.",
    # plans and misc
    "car-service": "The car is due for its annual service and MOT in early March.",
    "parking": "At the hospital car park, level 3 is usually empty after 10am.",
    "gift-idea": "Alex mentioned wanting a good chef's knife; a Japanese one would be a great present.",
    "moving": "We might move closer to the city once the lease ends next summer.",
    "volunteer": "I volunteer at the food bank on the first Saturday of every month.",
    "password-manager": "All my passwords are in the password manager; the recovery kit is in the safe.",
    "doctor-name": "My GP is Dr. Lindqvist at the Riverside practice.",
    "shoe-size": "I wear a size 43 in running shoes but 42 in leather shoes.",
}

QUERIES: tuple[LabeledQuery, ...] = (
    LabeledQuery("What food could give me a dangerous allergic reaction?", ("peanut-allergy",)),
    LabeledQuery("Which blood group am I?", ("blood-type",)),
    LabeledQuery("When do I next see the dentist?", ("dentist",)),
    LabeledQuery("Why should I not jog on pavements?", ("knee",)),
    LabeledQuery("What sets off my headaches?", ("migraine",)),
    LabeledQuery("Which supplement did the doctor recommend?", ("vitamin",)),
    LabeledQuery("What flowers should I get my sister for her birthday?", ("sister-birthday",)),
    LabeledQuery("Where does Maya work now?", ("sister-job",)),
    LabeledQuery("How is my father recovering from his operation?", ("dad-surgery",)),
    LabeledQuery("What's the best way to get in touch with my mother?", ("mom-phone",)),
    LabeledQuery("What present would my nephew like?", ("nephew",)),
    LabeledQuery("When did we get married?", ("anniversary",)),
    LabeledQuery("What time do I collect the children from school midweek?", ("kids-school",)),
    LabeledQuery("How do visitors get on the internet at our place?", ("wifi",)),
    LabeledQuery("I'm locked out, where can I find a key?", ("spare-key",)),
    LabeledQuery("Is there anything wrong with the heating system?", ("boiler",)),
    LabeledQuery("Which day do the rubbish bins go out?", ("bins",)),
    LabeledQuery("When is the rent due?", ("landlord",)),
    LabeledQuery("What colour is the lounge?", ("paint",)),
    LabeledQuery("Who is my boss and when do we meet?", ("manager",)),
    LabeledQuery("Am I getting promoted?", ("promotion",)),
    LabeledQuery("What is my presentation in Germany about?", ("conference",)),
    LabeledQuery("What's the status of my computer repair at work?", ("laptop",)),
    LabeledQuery("Which days am I in the office?", ("remote", "dog-walker")),
    LabeledQuery("How much am I putting aside to buy a home?", ("savings",)),
    LabeledQuery("When does the car insurance renew and what did it cost?", ("car-insurance",)),
    LabeledQuery("Who owes me money?", ("loan",)),
    LabeledQuery("How much do we spend on food shopping each week?", ("budget",)),
    LabeledQuery("Is my passport still valid for the holiday?", ("passport",)),
    LabeledQuery("Where are we going for the spring holiday?", ("japan-trip",)),
    LabeledQuery("Where do I like to sit on a plane?", ("seat",)),
    LabeledQuery("What helps with jet lag?", ("jetlag",)),
    LabeledQuery("What paperwork do I need to travel to America?", ("visa",)),
    LabeledQuery("What can't Alex eat?", ("vegetarian", "lactose")),
    LabeledQuery("How do I take my coffee?", ("coffee",)),
    LabeledQuery("Where can I buy good bread?", ("bakery",)),
    LabeledQuery("What do I cook for my weekday lunches?", ("meal-prep",)),
    LabeledQuery("When does the dog need his vaccination?", ("dog-vet",)),
    LabeledQuery("Who looks after the cat while we're away?", ("cat-sitter",)),
    LabeledQuery("Which medicine does the cat need?", ("cat-meds",)),
    LabeledQuery("What song am I learning on the guitar?", ("guitar",)),
    LabeledQuery("What's my running goal?", ("running",)),
    LabeledQuery("Which novel is the book club reading?", ("book-club",)),
    LabeledQuery("What camera gear do I use?", ("photography",)),
    LabeledQuery("What should I buy Alex as a gift?", ("gift-idea",)),
    LabeledQuery("Who is my family doctor?", ("doctor-name",)),
    LabeledQuery("When is the car's MOT?", ("car-service",)),
    LabeledQuery("Where are my passwords kept?", ("password-manager",)),
)


def recall_at(k: int, memory_vectors: np.ndarray, query_vectors: np.ndarray, ids: Sequence[str],
              queries: Sequence[LabeledQuery] = QUERIES) -> float:  # fmt: skip
    """Mean over queries of (relevant memories among the ``k`` most cosine-similar) / (relevant memories)."""
    memories = memory_vectors / np.linalg.norm(memory_vectors, axis=1, keepdims=True)
    scores = (query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)) @ memories.T
    total = 0.0
    for query, row in zip(queries, scores, strict=True):
        top = {ids[index] for index in np.argsort(-row, kind="stable")[:k]}
        total += len(top & set(query.relevant)) / len(query.relevant)
    return total / len(queries)


def evaluate(embed: Callable[[list[str]], np.ndarray], k: int = 5) -> float:
    """recall@k of an embedding function (texts → one vector per row) on this set."""
    ids = list(MEMORIES)
    return recall_at(k, embed([MEMORIES[i] for i in ids]), embed([q.text for q in QUERIES]), ids)
