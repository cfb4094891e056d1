"""``mmla.cli``: the ``mmla`` command and the demo, on top of every other mmla package.

Data flows one way, loaders -> eval/training -> hub_cards -> cli: the library packages import no command
line, and only this package imports them all.
"""
