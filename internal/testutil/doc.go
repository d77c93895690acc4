// Package testutil holds what the tests of several packages share: waiting
// for a condition with a deadline (WaitFor, Eventually), names unique in the
// process (UniqueName), private state directories (StateDir), and, on
// Linux, what the kernel knows of a TCP socket (Backlog, Unread, WaitRead),
// so that a test can wait for a peer to be blocked in accept or read
// instead of sleeping.
//
// It is imported by _test.go files only; no package of the program may
// import it (TestOnlyTestsImportTestutil checks). Its deadlines turn a hang
// into a failure that names what was awaited; they assert nothing about
// speed, which benchmarks show.
package testutil
