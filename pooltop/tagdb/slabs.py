"""What common Linux slab caches hold, in one line each, and what a SLUB alias group means.

/proc/slabinfo has no owner column: the cache name is the only hint. The table below names the
kernel subsystem that creates each cache (the owner) and what one object is. Patterns use `*` and
`?`; in an owner or description, `{0}` stands for the text the first `*` matched.

Order matters among patterns: the first that matches wins, so specific patterns come before
general ones ("kmalloc-cg-*" before "kmalloc-*"). An exact name always beats a pattern.

Written from the kernel sources' kmem_cache_create() calls (mm/, fs/, net/, kernel/); names that a
kernel no longer has do no harm.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pooltop.tagdb import OwnerCandidate

SOURCE = "slab"
CONFIDENCE = "description"

# slub_debug=U and /sys/kernel/debug/slab/NAME/alloc_traces show who calls kmalloc() for a size.
_ANY = "generic: the caller is not recorded"

#: (name or pattern, owner subsystem, one-line description)
SLAB_DESCRIPTIONS: tuple[tuple[str, str, str], ...] = (
    # --- generic kmalloc caches: the owner is whoever called kmalloc()
    ("kmalloc-rcl-*", "mm", "reclaimable (__GFP_RECLAIMABLE) kmalloc() objects up to {0} bytes; " + _ANY),
    ("kmalloc-cg-*", "mm", "memcg-accounted kmalloc() objects up to {0} bytes; " + _ANY),
    ("kmalloc-rnd-*", "mm", "kmalloc() objects, a randomised copy (RANDOM_KMALLOC_CACHES, 6.6+); " + _ANY),
    ("dma-kmalloc-*", "mm", "kmalloc(GFP_DMA) objects of up to {0} bytes; " + _ANY),
    ("kmalloc-*", "mm", "kmalloc() objects of up to {0} bytes; " + _ANY),
    ("size-*", "mm", "kmalloc() objects of up to {0} bytes (old SLAB allocator names)"),
    ("kmem_cache", "mm", "the slab allocator's own cache descriptors (one per cache)"),
    ("kmem_cache_node", "mm", "the slab allocator's per-NUMA-node cache bookkeeping"),
    # --- memory management
    ("mm_struct", "mm", "process address spaces (one per process, shared by its threads)"),
    ("vm_area_struct", "mm", "virtual memory areas: one per mapping of a process (see /proc/PID/maps)"),
    ("anon_vma", "mm", "reverse-map roots for anonymous memory (grow with fork() and private mappings)"),
    ("anon_vma_chain", "mm", "links between VMAs and anon_vmas (reverse map of anonymous pages)"),
    ("maple_node", "mm", "maple tree nodes: the VMA tree of each process (6.1+)"),
    ("vmap_area", "mm", "vmalloc()/vmap() address ranges (a steady rise points at a vmalloc leak)"),
    ("radix_tree_node", "mm", "xarray/radix tree nodes: mostly the page cache index of file mappings"),
    ("xarray_node", "mm", "xarray nodes"),
    ("shared_policy_node", "mm", "NUMA memory policies of shared memory ranges"),
    ("numa_policy", "mm", "NUMA memory policies (mbind/set_mempolicy)"),
    ("zspage", "mm", "zsmalloc page descriptors (zram, zswap)"),
    ("zs_handle", "mm", "zsmalloc object handles (zram, zswap)"),
    ("zswap_entry", "mm", "zswap compressed-page entries"),
    ("khugepaged_mm_slot", "mm", "processes registered with khugepaged (transparent huge pages)"),
    ("ksm_*", "mm", "kernel same-page merging bookkeeping"),
    ("userfaultfd_ctx_cache", "mm", "userfaultfd contexts"),
    ("page->ptl", "mm", "split page-table locks (one per page-table page when spinlocks are large)"),
    ("swap_*", "mm", "swap bookkeeping"),
    # --- processes, credentials, signals
    ("task_struct", "kernel", "threads: one per task (a steady rise: threads created and never reaped)"),
    ("thread_stack", "kernel", "kernel stacks of threads (when not vmap-allocated)"),
    ("signal_cache", "kernel", "per-process signal state (struct signal_struct, shared by threads)"),
    ("sighand_cache", "kernel", "signal handler tables (struct sighand_struct)"),
    ("sigqueue", "kernel", "queued signals not yet delivered"),
    ("files_cache", "vfs", "open-file tables of processes (struct files_struct)"),
    ("fs_cache", "vfs", "per-process root, cwd and umask (struct fs_struct)"),
    ("cred_jar", "kernel", "credentials (struct cred): uids, gids, capabilities of tasks and open files"),
    ("pid", "kernel", "process and thread IDs (struct pid; kept alive by pidfds and zombies too)"),
    ("pid_namespace", "kernel", "PID namespaces"),
    ("nsproxy", "kernel", "per-task namespace sets"),
    ("uts_namespace", "kernel", "UTS (hostname) namespaces"),
    ("user_namespace", "kernel", "user namespaces"),
    ("uid_cache", "kernel", "per-user accounting (struct user_struct)"),
    ("task_group", "sched", "CPU controller groups (cgroup cpu / autogroup)"),
    ("task_delay_info", "kernel", "per-task delay accounting"),
    ("taskstats", "kernel", "taskstats netlink replies"),
    ("posix_timers_cache", "time", "POSIX timers (timer_create)"),
    ("pool_workqueue", "workqueue", "links from workqueues to worker pools (per workqueue and CPU or node)"),
    ("perf_event", "perf", "perf events (perf_event_open, watchdog, BPF programs)"),
    ("audit_*", "audit", "audit records and rules"),
    ("key_jar", "keys", "kernel keyring keys"),
    ("io_kiocb", "io_uring", "io_uring requests in flight"),
    ("aio_kiocb", "aio", "Linux AIO requests in flight"),
    ("kioctx", "aio", "Linux AIO contexts (io_setup)"),
    ("ftrace_event_field", "tracing", "tracepoint field descriptions"),
    ("trace_event_file", "tracing", "per-instance tracepoint files"),
    ("kernfs_node_cache", "kernfs", "sysfs, cgroupfs and debugfs-like nodes (grows with devices, cgroups)"),
    ("kernfs_iattrs_cache", "kernfs", "attributes of kernfs nodes that were chmod/chown'ed"),
    ("sysfs_dir_cache", "sysfs", "sysfs directory entries (kernels before kernfs, 3.14)"),
    ("Acpi-*", "acpi", "ACPI interpreter objects ({0})"),
    # --- VFS
    ("filp", "vfs", "open files (struct file): one per open file, socket or pipe end"),
    ("dentry", "vfs", "directory entry cache: cached path names, also negative lookups (reclaimable)"),
    ("names_cache", "vfs", "path name buffers of system calls in progress (PATH_MAX each)"),
    ("inode_cache", "vfs", "inodes of pseudo filesystems without their own cache"),
    ("buffer_head", "vfs", "buffer heads: block-device buffers attached to page cache pages"),
    ("mnt_cache", "vfs", "mounts (struct mount): one per mount in every mount namespace"),
    ("file_lock_cache", "vfs", "POSIX and flock file locks"),
    ("file_lock_ctx", "vfs", "per-inode file lock lists"),
    ("fasync_cache", "vfs", "fasync (SIGIO) registrations"),
    ("seq_file", "vfs", "open seq_file readers (/proc, /sys, debugfs files)"),
    ("pipe_inode_info", "vfs", "pipes and FIFOs (struct pipe_inode_info)"),
    ("eventpoll_epi", "epoll", "epoll watches: one per file descriptor added to an epoll set"),
    ("eventpoll_pwq", "epoll", "epoll wait-queue hooks on watched files"),
    ("signalfd_ctx", "vfs", "signalfd contexts"),
    ("dnotify_*", "fsnotify", "dnotify watches"),
    ("inotify_inode_mark", "fsnotify", "inotify watches (one per watched inode per instance)"),
    ("fanotify_*", "fsnotify", "fanotify marks and events"),
    ("fsnotify_mark_connector", "fsnotify", "links between inodes/mounts and their notification marks"),
    ("dio", "vfs", "direct I/O requests in flight"),
    ("bio_post_read_ctx", "vfs", "fscrypt/fs-verity post-read work of bios"),
    ("fscrypt_info", "fscrypt", "per-inode encryption keys and policies"),
    ("mbcache", "vfs", "extended-attribute block sharing cache (ext2/ext4)"),
    ("dquot", "quota", "disk quota records"),
    ("proc_inode_cache", "procfs", "inodes of /proc files (grows with processes and /proc walkers)"),
    ("proc_dir_entry", "procfs", "registered /proc entries"),
    ("pde_opener", "procfs", "open /proc files that have a release hook"),
    ("shmem_inode_cache", "shmem", "tmpfs, shm and memfd inodes (the memory itself is in Shmem)"),
    ("sock_inode_cache", "net", "sockets (struct socket_alloc): one per open socket"),
    ("bdev_cache", "block", "block device inodes"),
    ("mqueue_inode_cache", "mqueue", "POSIX message queues"),
    ("hugetlbfs_inode_cache", "hugetlbfs", "hugetlbfs inodes"),
    ("lsm_inode_cache", "security", "LSM per-inode security blobs"),
    ("lsm_file_cache", "security", "LSM per-file security blobs"),
    ("iint_cache", "ima", "IMA/EVM integrity state of measured inodes"),
    ("avc_node", "selinux", "SELinux access vector cache entries"),
    ("avc_xperms_*", "selinux", "SELinux extended permission cache entries"),
    ("ebitmap_node", "selinux", "SELinux policy bitmaps"),
    ("avtab_node", "selinux", "SELinux policy access vector table"),
    ("hashtab_node", "selinux", "SELinux policy hash tables"),
    ("ext4_inode_cache", "ext4", "in-memory ext4 inodes"),
    ("*_inode_cache", "{0}", "in-memory inodes of the {0} filesystem"),
    ("ext4_extent_status", "ext4", "ext4 extent status tree entries (cached file extent maps)"),
    ("extent_status", "ext4", "ext4 extent status tree entries (cached file extent maps)"),
    ("ext4_groupinfo_*", "ext4", "ext4 per-block-group allocator info"),
    ("ext4_*", "ext4", "ext4 filesystem objects ({0})"),
    ("jbd2_*", "jbd2", "ext4/ocfs2 journal objects ({0})"),
    ("xfs_inode", "xfs", "in-memory XFS inodes"),
    ("xfs_*", "xfs", "XFS filesystem objects ({0})"),
    ("btrfs_inode", "btrfs", "in-memory btrfs inodes"),
    ("btrfs_*", "btrfs", "btrfs filesystem objects ({0})"),
    ("f2fs_*", "f2fs", "F2FS filesystem objects ({0})"),
    ("nfs_*", "nfs", "NFS client objects ({0})"),
    ("nfsd_*", "nfsd", "NFS server objects ({0})"),
    ("nfsd4_*", "nfsd", "NFSv4 server state ({0})"),
    ("rpc_*", "sunrpc", "SUN RPC objects ({0})"),
    ("cifs_*", "cifs", "SMB/CIFS client objects ({0})"),
    ("ceph_*", "ceph", "Ceph client objects ({0})"),
    ("fuse_*", "fuse", "FUSE objects ({0})"),
    ("ovl_*", "overlayfs", "overlayfs objects ({0})"),
    ("*_inode", "{0}", "in-memory inodes of {0}"),
    # --- block layer and storage
    ("bio-*", "block", "bios (block I/O in flight) of a bio_set ({0}: object size, an index on old kernels)"),
    ("biovec-*", "block", "bio_vec arrays of bios with up to {0} segments"),
    ("bio_integrity_*", "block", "block integrity metadata"),
    ("request_queue", "block", "block device request queues (one per disk/queue)"),
    ("blkdev_requests", "block", "block requests (legacy single-queue block layer)"),
    ("blkdev_queue", "block", "block device request queues (older kernels)"),
    ("blkdev_ioc", "block", "per-task block I/O contexts"),
    ("bsg_cmd", "block", "SCSI generic v4 (bsg) commands"),
    ("scsi_sense_cache", "scsi", "SCSI sense buffers"),
    ("sgpool-*", "scsi", "scatter-gather tables with {0} entries"),
    ("dm_*", "dm", "device-mapper objects ({0})"),
    ("kcopyd_job", "dm", "device-mapper copy jobs"),
    ("dax_cache", "dax", "DAX device inodes"),
    # --- networking
    ("skbuff_head_cache", "net", "socket buffers (struct sk_buff): packets queued, in flight or leaked"),
    ("skbuff_fclone_cache", "net", "fast-clone sk_buff pairs (TCP transmit)"),
    ("skbuff_small_head", "net", "small packet data heads (6.6+)"),
    ("skbuff_ext_cache", "net", "sk_buff extensions (bridge netfilter, xfrm, MPTCP, TC)"),
    ("skbuff_*", "net", "socket buffer objects ({0})"),
    ("TCP", "net", "TCP sockets (IPv4)"),
    ("TCPv6", "net", "TCP sockets (IPv6)"),
    ("UDP", "net", "UDP sockets (IPv4)"),
    ("UDPv6", "net", "UDP sockets (IPv6)"),
    ("UDP-Lite", "net", "UDP-Lite sockets (IPv4)"),
    ("UDPLITEv6", "net", "UDP-Lite sockets (IPv6)"),
    ("RAW", "net", "raw IP sockets (IPv4)"),
    ("RAWv6", "net", "raw IP sockets (IPv6)"),
    ("PING", "net", "ICMP echo sockets (IPv4)"),
    ("PINGv6", "net", "ICMP echo sockets (IPv6)"),
    ("MPTCP", "net", "Multipath TCP sockets"),
    ("MPTCPv6", "net", "Multipath TCP sockets (IPv6)"),
    ("UNIX", "net", "Unix domain sockets"),
    ("UNIX-STREAM", "net", "Unix domain stream sockets (6.x)"),
    ("request_sock_*", "net", "pending {0} connection requests (SYN received, not yet accepted)"),
    ("tw_sock_*", "net", "{0} sockets in TIME_WAIT"),
    ("tcp_bind_bucket", "net", "TCP local port bind buckets"),
    ("tcp_bind2_bucket", "net", "TCP local address+port bind buckets (6.1+)"),
    ("inet_peer_cache", "net", "long-lived IP peer information"),
    ("ip_fib_trie", "net", "IPv4 routing table trie nodes"),
    ("ip_fib_alias", "net", "IPv4 routing table entries"),
    ("ip_dst_cache", "net", "IPv4 route cache entries (dst_entry)"),
    ("ip6_dst_cache", "net", "IPv6 route cache entries (dst_entry)"),
    ("fib6_nodes", "net", "IPv6 routing table nodes"),
    ("ip4-frags", "net", "IPv4 fragment reassembly queues"),
    ("ip6-frags", "net", "IPv6 fragment reassembly queues"),
    ("ip_mrt_cache", "net", "IPv4 multicast routing cache"),
    ("ip6_mrt_cache", "net", "IPv6 multicast routing cache"),
    ("secpath_cache", "xfrm", "IPsec security paths of packets"),
    ("xfrm_*", "xfrm", "IPsec state and policy objects ({0})"),
    ("bridge_fdb_cache", "bridge", "bridge forwarding database entries (learned MAC addresses)"),
    ("net_namespace", "net", "network namespaces"),
    ("nf_conntrack", "netfilter", "connection tracking entries: one per tracked flow (nf_conntrack_max)"),
    ("nf_conntrack_expect", "netfilter", "expected related connections (FTP, SIP helpers)"),
    ("nf_conntrack_*", "netfilter", "connection tracking entries of one network namespace (older kernels)"),
    ("nf-frags", "netfilter", "defragmentation queues of netfilter"),
    ("nf_*", "netfilter", "netfilter objects ({0})"),
    ("sctp_*", "sctp", "SCTP objects ({0})"),
    # --- drivers and virtualisation
    ("kvm_*", "kvm", "KVM objects ({0})"),
    ("x86_emulator", "kvm", "KVM instruction emulator contexts"),
    ("i915_*", "i915", "Intel GPU driver objects ({0})"),
    ("drm_*", "drm", "DRM (GPU) objects ({0})"),
    ("amdgpu_*", "amdgpu", "AMD GPU driver objects ({0})"),
    ("iommu_iova", "iommu", "IOMMU I/O virtual address ranges (DMA mappings)"),
    ("iommu_iova_magazine", "iommu", "IOMMU IOVA caches"),
    ("dmaengine-unmap-*", "dmaengine", "DMA engine unmap data for {0} pages"),
    ("btree_node", "lib", "generic B+tree nodes"),
)

_ANONYMOUS = re.compile(r":(?P<flags>[A-Za-z]*)-?(?P<size>\d+)")


def _compile(pattern: str) -> re.Pattern[str]:
    body = "".join("(.*)" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL)


_EXACT: dict[str, tuple[str, str]] = {}
_PATTERNS: list[tuple[re.Pattern[str], str, str]] = []
for _name, _owner, _text in SLAB_DESCRIPTIONS:
    if "*" in _name or "?" in _name:
        _PATTERNS.append((_compile(_name), _owner, _text))
    else:
        _EXACT.setdefault(_name, (_owner, _text))


@lru_cache(maxsize=8192)
def slab_description(name: str) -> tuple[str, str] | None:
    """(owner subsystem, description) of a slab cache name, or None when the table does not know it."""
    if name in _EXACT:
        return _EXACT[name]
    m = _ANONYMOUS.fullmatch(name)
    if m:  # /sys/kernel/slab/:A-0000064 is the unnamed cache several names were merged into
        flags = f", flags {m['flags']}" if m["flags"] else ""
        return "slub", f"unnamed SLUB cache of {int(m['size'])}-byte objects{flags}: merged caches share it"
    for regex, owner, text in _PATTERNS:
        pm = regex.fullmatch(name)
        if pm:
            groups = pm.groups() or ("",)
            if not all(groups):
                continue  # "kmalloc-" is not a size
            return owner.format(*groups), text.format(*groups)
    return None


def slab_candidates(name: str) -> list[OwnerCandidate]:
    """The description of a slab cache as owner candidates (zero or one)."""
    found = slab_description(name)
    if found is None:
        return []
    owner, text = found
    return [OwnerCandidate(tag=name, owner=owner, description=text, source=SOURCE, confidence=CONFIDENCE)]


def alias_candidate(name: str, aliases: Sequence[str], *, shown: int = 6) -> OwnerCandidate | None:
    """A candidate that says `name` shares its SLUB cache with `aliases` (from /sys/kernel/slab).

    SLUB merges caches of similar size and flags; /proc/slabinfo then prints one of the names for all
    of them, so the one that grows may be any name in the group. The owner lists every known
    subsystem of the group.
    """
    others = sorted({a for a in aliases if a and a != name})
    if not others:
        return None
    owners: list[str] = []
    for member in [name, *others]:
        found = slab_description(member)
        if found and found[0] not in owners:
            owners.append(found[0])
    listed = ", ".join(others[:shown]) + (f" and {len(others) - shown} more" if len(others) > shown else "")
    return OwnerCandidate(
        tag=name,
        owner="+".join(owners) if owners else "slub",
        description=f"SLUB merged this cache with {listed}: the counts are shared, any of them may grow",
        source=SOURCE,
        confidence=CONFIDENCE,
    )
