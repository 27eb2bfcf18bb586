"""Write seed data straight into a stopped Samba DC's database.

This file is run as a script by the *system* Python (``/usr/bin/python3``), which has
Samba's own bindings (``python3-samba``); it must not import anything from Reclaim.
Going through SamDB offline runs Samba's full module stack (SIDs, backlinks, password
hashes, security descriptors), so the result is what an LDAP add would produce, but
1,600 users take ~3 s in one transaction instead of a server round trip each.

Input (JSON on stdin): ``smb_conf``, ``sam_ldb``, ``ldif``, ``grants`` (list of
``{"target", "trustee", "ace"}`` with ``{sid}`` in ``ace``), ``report_sids`` (DNs).
Output (JSON on stdout): ``{"domain_sid": ..., "sids": {dn: sid}}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _sid_of(db: Any, dn: str) -> str:
    res = db.search(base=dn, scope=0, attrs=["objectSid"])  # 0 = SCOPE_BASE
    return str(db.schema_format_value("objectSid", res[0]["objectSid"][0]).decode())


def main() -> None:
    """Apply the LDIF and ACE grants from stdin in one transaction; print the SIDs."""
    from samba.auth import system_session
    from samba.param import LoadParm
    from samba.samdb import SamDB
    from samba.sd_utils import SDUtils

    spec = json.load(sys.stdin)
    lp = LoadParm()
    lp.load(spec["smb_conf"])
    db = SamDB(url=spec["sam_ldb"], session_info=system_session(), lp=lp)
    db.transaction_start()
    try:
        db.add_ldif(spec["ldif"])
        sd = SDUtils(db)
        for grant in spec["grants"]:
            sd.dacl_add_ace(grant["target"], grant["ace"].format(sid=_sid_of(db, grant["trustee"])))
        sids = {dn: _sid_of(db, dn) for dn in spec["report_sids"]}
    except BaseException:
        db.transaction_cancel()
        raise
    db.transaction_commit()
    json.dump({"domain_sid": str(db.get_domain_sid()), "sids": sids}, sys.stdout)


if __name__ == "__main__":
    main()
