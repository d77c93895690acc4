//go:build linux

package local

import (
	"testing"
)

func BenchmarkTmpScan(b *testing.B) {
	for b.Loop() {
		scanProcs("/nonexistent", func(procStat) bool { return false }, func(procEntry) bool { return false })
	}
}
func BenchmarkTmpScanEnv(b *testing.B) {
	for b.Loop() {
		scanProcs("/nonexistent", nil, func(procEntry) bool { return false })
	}
}
func BenchmarkTmpAncestry(b *testing.B) {
	for b.Loop() {
		ancestry()
	}
}
