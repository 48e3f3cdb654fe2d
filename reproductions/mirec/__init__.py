"""MIRec (WWW'21) specs: Tables 4, 5, 6 and Figure 4."""
