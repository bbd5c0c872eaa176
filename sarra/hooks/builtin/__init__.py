"""sarra's own plugins, under the names v2 and sr3 configs use for the common ones.

Written for sarra (not copied): they do the job the v2 plugin or sr3 callback of that
name does, as native hooks.  :data:`V2` maps v2 plugin names (``on_message msg_log``),
:data:`SR3` the sr3 callback module names (``callback log``, ``flowcb
accept.renamewhatfn``; a leading ``sarracenia.flowcb.`` is dropped by the loader).  A
user's own plugin of the same name (in the plugin directory) comes first.
"""

from __future__ import annotations

from typing import Dict

from sarra.hooks.builtin.choose import MsgBySource, MsgByUser, MsgDelay, MsgSkipOld
from sarra.hooks.builtin.logs import FileLog, HbLog, Log, MsgLog, PostLog
from sarra.hooks.builtin.rename import (
    Accelerator,
    HttpToHttps,
    RenameDatestamp,
    RenameWhatFn,
    ReplaceNewDir,
)

V2: Dict[str, type] = {
    "msg_log": MsgLog,
    "file_log": FileLog,
    "post_log": PostLog,
    "hb_log": HbLog,
    "msg_delay": MsgDelay,
    "msg_skip_old": MsgSkipOld,
    "msg_by_source": MsgBySource,
    "msg_by_user": MsgByUser,
    "msg_rename_whatfn": RenameWhatFn,
    "msg_rename_dmf": RenameDatestamp,
    "msg_renamer": RenameDatestamp,
    "msg_replace_new_dir": ReplaceNewDir,
    "msg_http_to_https": HttpToHttps,
    "accel_wget": Accelerator,
    "accel_scp": Accelerator,
    "accel_cp": Accelerator,
}

SR3: Dict[str, type] = {
    "log": Log,
    "accept.renamewhatfn": RenameWhatFn,
    "accept.renamedmf": RenameDatestamp,
    "accept.renamer": RenameDatestamp,
    "accept.httptohttps": HttpToHttps,
    "accept.messagedelay": MsgDelay,
    "accept.skipold": MsgSkipOld,
}

__all__ = ["SR3", "V2"]
