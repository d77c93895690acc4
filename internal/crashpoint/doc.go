// Package crashpoint lets tests kill the controller at a named point
// between two steps, as a power cut or a SIGKILL would, to prove that a
// restarted controller neither repeats nor loses what was under way.
//
// Code marks a boundary with Hit("runbook.step.recorded"). In a normal
// build Hit is an empty function the compiler removes. Built with
// `-tags crashpoints` (the end-to-end tests build their autoheal binary
// so), Hit SIGKILLs the process when the environment variable
// AUTOHEAL_CRASH_AT names the point: a comma-separated list of names,
// each optionally "name@N" to crash at its N-th hit (default the first).
// The process also prints "crashpoint NAME" on stderr first, so a test
// knows which point it died at.
package crashpoint
