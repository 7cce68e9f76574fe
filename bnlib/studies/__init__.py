"""One module per question a notebook asks; notebooks import the module (`from bnlib.studies import shift`)."""
