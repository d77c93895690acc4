// Package atomicfile replaces whole files so that nobody ever sees a torn
// one: a reader, or a process started after the writer was killed at any
// point, finds the old content or the new, never a mix, a truncation or an
// empty file. WriteFile and Write are also durable: once they return, the
// new content survives a power loss or a kernel crash. WriteFileNoSync is
// the explicit exception, for records whose loss a crash makes moot and
// whose fsyncs would sit on a latency-critical path.
//
// It owns the order of the steps (temporary file in the same directory,
// write, fsync, rename over the target, fsync of the directory), not what
// the files mean.
package atomicfile
