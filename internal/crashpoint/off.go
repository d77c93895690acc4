//go:build !crashpoints

package crashpoint

// Enabled reports whether this build can crash at points.
const Enabled = false

// Hit marks a crash point; a no-op in normal builds.
func Hit(name string) {}
