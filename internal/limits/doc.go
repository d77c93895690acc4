// Package limits holds the bounds on the files autoheal reads from
// operators (the config file and runbook documents), in one place, and the
// checks that enforce the bounds on a file's raw bytes before a YAML parser
// builds anything from them: the size read (never more than the limit plus
// one byte), UTF-8 validity, and a cheap one-pass scan of the text for
// nesting depth, scalar length, and the number of keys and list items.
//
// The scan exists because the YAML parser is not bounded: it recurses
// once per key of a block mapping (a long mapping overflows the stack) and
// copies the mapping at each level (quadratic time), and it reads the whole
// file into runes and tokens before it checks anything. The scan uses a few
// hundred bytes of state whatever the input. It follows the parser's layout
// rules on real files but may count less on layouts the parser reads in
// ways of its own; CheckTree then checks the tree the parser built against
// the same limits, exactly, so no file beyond a limit is accepted.
//
// The package knows YAML's layout (indentation, flow collections, quoted
// and block scalars), not what a config or a document means: the limits on
// counts of groups, alarms or steps are checked by the packages that own
// those, with the constants declared here.
package limits
