"""MIRec (WWW'21) specs: Tables 4, 5, 6 and Figures 4, 5."""
