"""Hooks: user plugins of both Sarracenia generations, sarra's own, and trigger scripts.

Owns the hook contract (``base``: ``Hook``, ``HookSet``, ``Host``), finding and loading
plugins by name as v2 and sr3 do (``loading``), the plugin options (``settings``), the
v2 plugin adapter (``v2``, ``v2msg``), the sr3 flow callback adapter (``sr3``,
``sr3msg``), the modules those plugins import (``compat``), how a plugin's changes go
back into a delivery (``placing``), trigger scripts (``script``) and the built-in
plugins (``builtin``).  doc/user-guide.rst, "Plugins from v2 and sr3", is the user's
view.

May import: ``core``, ``config``, ``logs``, ``transfer``.  Never ``flow`` or ``roles``
(the flow calls hooks, not the other way round) nor a sibling adapter (``fs``,
``broker``, ``post``): what a plugin may change in a delivery goes through ``placing``.
"""

from __future__ import annotations

from sarra.hooks.base import EVENTS, Hook, HookSet, Host
from sarra.hooks.script import ScriptHook, script_env

__all__ = ["EVENTS", "Hook", "HookSet", "Host", "ScriptHook", "script_env"]
