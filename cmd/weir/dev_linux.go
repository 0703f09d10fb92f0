package main

import "syscall"

// devChildAttr puts a dev cluster node in its own process group, so that a
// terminal's Ctrl-C reaches only weir dev cluster, which then stops each node
// exactly once (a second signal would kill weir broker without a clean
// shutdown). Pdeathsig kills the node if weir dev cluster dies without
// stopping it, say by SIGKILL. Linux sends it when the thread that started
// the child exits, which in Go happens only with the process, as nothing
// here locks a goroutine to its thread.
func devChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
