//! A seccomp filter that makes `add_key`, `keyctl` and `request_key` fail
//! with EPERM, as Docker's default profile does, installed in a child
//! between fork and exec (filters survive exec).

use std::process::Command;

// Classic BPF, from <linux/filter.h> and <linux/seccomp.h>:
// BPF_LD | BPF_W | BPF_ABS, BPF_JMP | BPF_JEQ | BPF_K, BPF_RET | BPF_K.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// `offsetof(struct seccomp_data, nr)` and `arch`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: BPF_JMP_JEQ_K,
        jt,
        jf,
        k,
    }
}

fn program() -> Vec<libc::sock_filter> {
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        // Another architecture's calling convention: allow (not ours to judge).
        jump(AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD_W_ABS, OFFSET_NR),
    ];
    for nr in [libc::SYS_add_key, libc::SYS_keyctl, libc::SYS_request_key] {
        let nr = u32::try_from(nr).expect("syscall number");
        p.push(jump(nr, 0, 1));
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32));
    }
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

/// Run `cmd` under the filter.
pub fn block_keyutils(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // Built before the fork: the child only calls prctl.
    let filter: &'static [libc::sock_filter] = Box::leak(program().into_boxed_slice());
    let prog: &'static libc::sock_fprog = Box::leak(Box::new(libc::sock_fprog {
        len: u16::try_from(filter.len()).expect("short program"),
        filter: filter.as_ptr().cast_mut(),
    }));
    let prog_addr = std::ptr::from_ref(prog) as usize;
    // SAFETY: runs in the forked child before exec and calls only prctl,
    // which is async-signal-safe, with a pointer to memory leaked above
    // (so alive in the child's copy of the address space).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                prog_addr as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
