// Package config owns autoheal's configuration file: its YAML schema (the
// types in types.go), the defaults of every field, and its validation.
//
// Load and Parse return either a Config in which every default is filled
// in and every path is absolute, or *Errors listing every problem of the
// file as FILE:LINE:COL: message. Unknown fields are errors, and a config
// is never half valid: code that receives a *Config may use it as is.
//
// The package decides what a valid config is; it knows nothing about
// running it. It starts no process, opens no socket, and touches no state
// directory; the checks it makes on the host are those a reader of the file
// could make (a command exists and is executable, a workdir is a
// directory, a user exists, a certificate and its key load as a pair).
// What a field does at run time belongs to the packages that act on it and
// is described in docs/config-reference.md.
package config
