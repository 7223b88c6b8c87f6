"""The enterprise registry: enterprises (USCC), users and their credentials, broker
authorisations, agencies and customs offices, licences held, start-up and withdrawal."""
