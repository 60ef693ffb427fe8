/* Launcher for user-mode-linux on hosts with AMX: UML 6.1 passes a fixed-size XSTATE buffer to
 * PTRACE_SETREGSET(NT_X86_XSTATE), which the host rejects with EFAULT ("ptrace set fp regs failed,
 * errno = 14") because AMX makes the host's XSTATE area larger. A seccomp filter makes that regset
 * unavailable (EIO), so UML falls back to PTRACE_GETFPREGS/SETFPREGS, then execs linux.uml. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NT_X86_XSTATE_ 0x202

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]); return 64; }
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ptrace, 0, 6),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PTRACE_GETREGSET, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PTRACE_SETREGSET, 0, 3),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NT_X86_XSTATE_, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EIO & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("seccomp");
    return 70;
  }
  execvp(argv[1], argv + 1);
  perror("exec");
  return 127;
}
