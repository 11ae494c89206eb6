"""A labelled corpus for file_search quality: short documents on unrelated topics, and
questions about them. ``KEYWORD`` questions share words with their answer; ``PARAPHRASE``
questions share none of its content words (checked by the benchmark), so only meaning finds them;
``IDENTIFIER`` questions are bare codes, which a sentence embedding barely tells apart.
"""

from __future__ import annotations

DOCS: dict[str, str] = {
    "refunds.md": "Refund policy. Customers may return any item within 30 days of delivery for a "
    "full refund. Refunds are paid to the original card within five business days.",
    "shipping.md": "Shipping. Orders leave our warehouse within two days. Express delivery "
    "reaches most addresses overnight; international parcels take one to three weeks.",
    "password.md": "Account security. To reset your password, open Settings, choose Security and "
    "press Reset. A link valid for one hour is emailed to you.",
    "garden.txt": "Tomatoes need six hours of sunlight and deep watering twice a week. Mulch keeps "
    "the soil moist in summer.",
    "bread.txt": "Sourdough bread: mix flour, water and starter, let the dough rise overnight, "
    "then bake at 250 degrees for forty minutes.",
    "kernel.py": "def restart_kernel(session):\n    '''Restart the Jupyter kernel after a timeout; "
    "variables are lost.'''\n    session.kernel.restart()\n",
    "backup.sh": "#!/bin/sh\n# Nightly backup: copy the database to cold storage at 2 am and "
    "keep thirty snapshots.\npg_dump app > /backups/app.sql\n",
    "vacation.md": "Leave policy. Employees receive 25 days of paid annual leave. Unused days "
    "carry over until March of the following year.",
    "parking.md": "Parking. Staff cars go in level B2 of the garage. Bicycles are stored in the "
    "locked room beside the main entrance.",
    "coffee.md": "The espresso machine on floor three is descaled every Friday. Use only filtered "
    "water in its tank.",
    "fire.md": "Fire safety. When the alarm sounds, leave by the nearest stairwell, never the "
    "elevator, and gather in the car park across the street.",
    "wifi.md": "The guest wireless network is called Visitors; its passphrase changes every "
    "Monday and is printed at reception.",
    "invoice.md": "Invoices are due within 45 days. Late payments incur a two percent monthly fee.",
    "cats.txt": "Cats sleep between twelve and sixteen hours a day and groom themselves for a "
    "large part of their waking time.",
    "volcano.txt": "A volcano erupts when pressure from molten rock, called magma, forces it up "
    "through the crust; the lava then cools into basalt.",
    "budget.md": "The marketing budget for next year is 1.2 million euros, forty percent of it "
    "for online advertising.",
    "meeting.md": "The all-hands meeting takes place on the first Tuesday of every month at ten "
    "in the large auditorium.",
    "printer.md": "If the printer jams, open the rear tray, pull the stuck sheet out gently and "
    "close the tray until it clicks.",
    "marathon.txt": "A marathon is 42.195 kilometres long. Runners usually train for sixteen "
    "weeks and taper in the final fortnight.",
    "moon.txt": "The Moon orbits Earth every 27.3 days and always shows the same face because its "
    "rotation is tidally locked.",
    "parts-a.md": "Spare part ZX-4411 is the hinge of the loading door, in steel.",
    "parts-b.md": "Spare part ZX-4417 is the hinge of the side door, in aluminium.",
    "incident.md": "Incident INC-20931: the payment gateway timed out for 14 minutes on 3 May; "
    "the cause was an expired certificate.",
    "errors-a.md": "Error E7713 means the licence server cannot be reached right now.",
    "errors-b.md": "Error E7714 means the licence server rejected an expired licence.",
    "release.md": "Release 4.18.2 fixes the memory leak in the exporter and adds Norwegian to "
    "the interface languages.",
}

IDENTIFIER: list[tuple[str, str]] = [
    ("ZX-4411", "parts-a.md"),
    ("ZX-4417", "parts-b.md"),
    ("INC-20931", "incident.md"),
    ("E7713", "errors-a.md"),
    ("E7714", "errors-b.md"),
    ("4.18.2", "release.md"),
]

KEYWORD: list[tuple[str, str]] = [
    ("refund within 30 days", "refunds.md"),
    ("express delivery overnight", "shipping.md"),
    ("reset password link", "password.md"),
    ("tomatoes sunlight watering", "garden.txt"),
    ("sourdough starter bake", "bread.txt"),
    ("restart jupyter kernel timeout", "kernel.py"),
    ("nightly backup snapshots", "backup.sh"),
    ("paid annual leave days", "vacation.md"),
    ("garage level B2 bicycles", "parking.md"),
    ("espresso machine descaled", "coffee.md"),
    ("fire alarm stairwell", "fire.md"),
    ("guest wireless passphrase", "wifi.md"),
    ("invoices due late payments", "invoice.md"),
    ("volcano magma lava", "volcano.txt"),
    ("marketing budget advertising", "budget.md"),
    ("printer jams rear tray", "printer.md"),
    ("marathon kilometres training", "marathon.txt"),
    ("moon orbits tidally locked", "moon.txt"),
]

PARAPHRASE: list[tuple[str, str]] = [
    ("can I get my money back if I send a purchase back", "refunds.md"),
    ("how long until my package arrives abroad", "shipping.md"),
    ("I forgot my login secret, what now", "password.md"),
    ("what do vegetable plants require to grow well", "garden.txt"),
    ("recipe for a loaf made with natural yeast", "bread.txt"),
    ("the notebook stopped responding, how to get it running again", "kernel.py"),
    ("when are copies of our data saved", "backup.sh"),
    ("how much holiday time do workers get", "vacation.md"),
    ("where should I leave my vehicle or cycle at work", "parking.md"),
    ("how is the kitchen appliance that brews cafe drinks maintained", "coffee.md"),
    ("what to do during an emergency evacuation", "fire.md"),
    ("how can outsiders who come by get online", "wifi.md"),
    ("what happens if a client pays a bill too slowly", "invoice.md"),
    ("how long do kittens doze", "cats.txt"),
    ("why do mountains spew hot liquid stone", "volcano.txt"),
    ("how much money is planned for promotion spending", "budget.md"),
    ("when is the company-wide gathering held", "meeting.md"),
    ("a page got caught inside the copier, how do I fix it", "printer.md"),
    ("what distance is the classic footrace", "marathon.txt"),
    ("why is only one side of our natural satellite visible", "moon.txt"),
]
