"""The zone's own figures: clearance time by WCO Time Release Study stage, in hours and in
Chinese working days, by lane, transport mode, credit tier, office and month."""
