"""Logistics: consignments and their legs, transport equipment (ISO 6346 containers, wagons,
barges, flights), seals and e-locks, GS1 EPCIS 2.0 events (capture and query), what is packed in
what, timelines and monitoring rules that raise alerts through the notifications context."""
