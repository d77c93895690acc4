package provider

import (
	"crypto/rand"
	"encoding/hex"
)

// NewInstanceID returns a fresh instance id: "i-" and 17 lowercase hex
// digits (68 random bits), as EC2's. Ids name state directories and are
// matched in process environments, so they must never repeat: they come
// from crypto/rand, not from a clock or a counter.
func NewInstanceID() string {
	var b [9]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return "i-" + hex.EncodeToString(b[:])[:17]
}
