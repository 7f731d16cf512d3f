# SPDX-License-Identifier: BSD-3-Clause
"""uraid's methods for SPDK's rpc.py, as a plug-in:

    PYTHONPATH=/path/to/uraid/scripts/spdk rpc.py --plugin uraid_rpc \\
        bdev_uraid_create -n r6 -r raid6 -z 64 -b "m0 m1 m2 m3 m4 m5"

Each command sends the method of the same name to an SPDK application that has the uraid bdev
module loaded (docs/spdk.md); the parameters are those of uraid's bdev_raid_* methods.
"""

import json


def _call(args, method, params):
    result = args.client.call(method, {k: v for k, v in params.items() if v is not None})
    print(json.dumps(result, indent=2))


def _names(text):
    return text.replace(",", " ").split()


def spdk_rpc_plugin_initialize(subparsers):
    def create(args):
        _call(args, "bdev_uraid_create", {
            "name": args.name,
            "raid_level": args.raid_level,
            "strip_size_kb": args.strip_size_kb,
            "base_bdevs": _names(args.base_bdevs),
            "uuid": args.uuid,
            "superblock": True if args.superblock else None,
            "data_chunks": args.data_chunks,
            "parity_chunks": args.parity_chunks,
            "copies": args.copies,
            "force": True if args.force else None,
            "consistency_policy": args.consistency_policy,
            "bitmap_region_kb": args.bitmap_region_kb,
            "journal_mode": args.journal_mode,
            "journal_bdev": args.journal_bdev,
        })

    p = subparsers.add_parser("bdev_uraid_create", help="create a uraid array")
    p.add_argument("-n", "--name", required=True, help="array name")
    p.add_argument("-r", "--raid-level", required=True,
                   help="raid0, raid1, raid10, concat, raid5, raid5f, raid6 or ec")
    p.add_argument("-z", "--strip-size-kb", type=int, help="strip size in KiB (default 64)")
    p.add_argument("-b", "--base-bdevs", required=True,
                   help="member bdevs in slot order, whitespace separated, in quotes")
    p.add_argument("--uuid", help="array UUID")
    p.add_argument("-s", "--superblock", action="store_true",
                   help="write superblocks, so the array assembles when its members appear")
    p.add_argument("-k", "--data-chunks", type=int, help="ec: data strips per stripe")
    p.add_argument("-m", "--parity-chunks", type=int, help="ec: parity strips (1-4)")
    p.add_argument("-c", "--copies", type=int, help="raid10: copies (default 2)")
    p.add_argument("-f", "--force", action="store_true",
                   help="create even over members that carry a uraid superblock")
    p.add_argument("-p", "--consistency-policy",
                   help="none, bitmap, ppl or journal (needs --superblock)")
    p.add_argument("--bitmap-region-kb", type=int, help="bitmap: array data per bit")
    p.add_argument("--journal-mode", help="journal: write-through or write-back")
    p.add_argument("--journal-bdev", help="journal: keep the log on this bdev")
    p.set_defaults(func=create)

    def delete(args):
        _call(args, "bdev_uraid_delete", {
            "name": args.name,
            "clear_superblocks": True if args.clear_superblocks else None})

    p = subparsers.add_parser("bdev_uraid_delete", help="delete a uraid array")
    p.add_argument("name", help="array name")
    p.add_argument("--clear-superblocks", action="store_true",
                   help="erase the members' superblocks first")
    p.set_defaults(func=delete)

    def get_bdevs(args):
        _call(args, "bdev_uraid_get_bdevs", {"category": args.category})

    p = subparsers.add_parser("bdev_uraid_get_bdevs", help="list uraid arrays")
    p.add_argument("category", nargs="?", default="all",
                   help="all, online, configuring or offline")
    p.set_defaults(func=get_bdevs)

    def get_stats(args):
        _call(args, "bdev_uraid_get_stats", {"name": args.name, "interval_ms": args.interval_ms})

    p = subparsers.add_parser("bdev_uraid_get_stats",
                              help="an array's rates, stripe-write kinds and state")
    p.add_argument("name", help="array name")
    p.add_argument("-i", "--interval-ms", type=int, help="measure rates over this interval")
    p.set_defaults(func=get_stats)

    def examine(args):
        _call(args, "bdev_uraid_examine", {"force": True if args.force else None})

    p = subparsers.add_parser("bdev_uraid_examine",
                              help="start arrays from the superblocks found, degraded if need be")
    p.add_argument("-f", "--force", action="store_true",
                   help="start even a degraded array that was not shut down cleanly")
    p.set_defaults(func=examine)

    def add_base_bdev(args):
        _call(args, "bdev_uraid_add_base_bdev",
              {"raid_bdev": args.raid_bdev, "base_bdev": args.base_bdev})

    p = subparsers.add_parser("bdev_uraid_add_base_bdev",
                              help="add a bdev to an array (it takes a failed slot, or waits "
                                   "as a spare)")
    p.add_argument("raid_bdev", help="array name")
    p.add_argument("base_bdev", help="bdev to add")
    p.set_defaults(func=add_base_bdev)

    def add_spare(args):
        _call(args, "bdev_uraid_add_spare",
              {"raid_bdev": args.raid_bdev, "base_bdev": args.base_bdev})

    p = subparsers.add_parser("bdev_uraid_add_spare",
                              help="add a hot spare to an array (no array: the shared pool)")
    p.add_argument("base_bdev", help="bdev to hold as a spare")
    p.add_argument("-r", "--raid-bdev", help="array name")
    p.set_defaults(func=add_spare)

    for method, what in (("remove", "take a member out of its array"),
                         ("fail", "mark a member failed (a spare takes its slot)")):
        def member(args, method=method):
            _call(args, "bdev_uraid_%s_base_bdev" % method, {"name": args.name})

        p = subparsers.add_parser("bdev_uraid_%s_base_bdev" % method, help=what)
        p.add_argument("name", help="member bdev name")
        p.set_defaults(func=member)

    def replace(args):
        _call(args, "bdev_uraid_replace_base_bdev", {
            "name": args.name, "base_bdev": args.base_bdev,
            "new_base_bdev": args.new_base_bdev})

    p = subparsers.add_parser("bdev_uraid_replace_base_bdev",
                              help="copy a member to a new bdev while it serves, then swap")
    p.add_argument("name", help="array name")
    p.add_argument("base_bdev", help="member to replace")
    p.add_argument("new_base_bdev", nargs="?", help="new member (default: the array's spare)")
    p.set_defaults(func=replace)

    def set_options(args):
        _call(args, "bdev_uraid_set_options", {
            "process_window_size_kb": args.process_window_size_kb,
            "process_max_bandwidth_mb_sec": args.process_max_bandwidth_mb_sec})

    p = subparsers.add_parser("bdev_uraid_set_options", help="rebuild window and bandwidth cap")
    p.add_argument("-w", "--process-window-size-kb", type=int)
    p.add_argument("-b", "--process-max-bandwidth-mb-sec", type=int)
    p.set_defaults(func=set_options)

    def scrub(args):
        _call(args, "bdev_uraid_scrub",
              {"name": args.name, "repair": True if args.repair else None})

    p = subparsers.add_parser("bdev_uraid_scrub", help="check (or repair) parity and copies")
    p.add_argument("name", help="array name")
    p.add_argument("--repair", action="store_true", help="rewrite what is found bad")
    p.set_defaults(func=scrub)
