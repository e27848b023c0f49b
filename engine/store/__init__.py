"""Storage: the event store's backend-neutral interface (``interface.py``), its embedded SQLite backend
(``events.py``) and the decision log (``decisions.py``, candidates in ``candidates.py``), sharing one SQLite
file (``sqlite.py``); used by serving, by training's export commands and by the decision engine (contract
rows)."""
