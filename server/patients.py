"""Who is in each bed: plausible patient names from a seeded generator.

A nurse's screen names the patient, not the diagnosis; the scenario a bed runs is the
instructor's business (the dashboard shows it only in its instructor view). The names are drawn
from a small mixed list by a generator seeded per (seed, bed), so bed 4 of seed 1 is always the
same person, whatever the size of the ward or the order in which beds are admitted.
"""

from __future__ import annotations

import random

GIVEN = ("Adaeze", "Aisha", "Alan", "Amara", "Ana", "Arjun", "Beatriz", "Bronwen", "Callum",
         "Chen", "Dafydd", "Dorota", "Eilidh", "Emeka", "Fatima", "Freya", "George", "Hamza",
         "Ines", "Isla", "Jamal", "Joan", "Kwame", "Leila", "Lukas", "Mairead", "Marek",
         "Mei", "Niamh", "Olu", "Priya", "Rhys", "Rosa", "Sanjay", "Siobhan", "Tariq",
         "Thomas", "Ursula", "Wei", "Yusuf", "Zofia", "Margaret", "Peter", "Hannah")
FAMILY = ("Ahmed", "Baker", "Campbell", "Chowdhury", "Davies", "Evans", "Fernandes", "Fraser",
          "Green", "Hughes", "Ivanova", "Jones", "Kaur", "Kowalski", "Lewis", "MacDonald",
          "Mensah", "Murphy", "Nguyen", "Novak", "Obi", "O'Brien", "Okafor", "Patel", "Price",
          "Quinn", "Rahman", "Reid", "Roberts", "Santos", "Shah", "Singh", "Smith", "Taylor",
          "Thomas", "Walker", "Wang", "Williams", "Wilson", "Wright", "Yilmaz", "Zhang")


def patient_name(bed: int, seed: int = 0) -> str:
    """A plausible name for ``bed``, the same for every call with the same bed and seed."""
    rng = random.Random(f"vitalsim patient {seed} {bed}")
    return f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"


def ward_names(beds: list[int], seed: int = 0) -> dict[int, str]:
    """Names for a ward's beds, no two the same (a clash is redrawn, deterministically)."""
    out: dict[int, str] = {}
    taken: set[str] = set()
    for bed in beds:
        name, attempt = patient_name(bed, seed), 0
        while name in taken:
            attempt += 1
            name = patient_name(bed, seed * 7919 + attempt * 104729)
        out[bed] = name
        taken.add(name)
    return out
