// Package benchmarks holds side-by-side tests and benchmarks of azcred and
// azidentity against the local emulator. It is a nested module so that the
// Azure SDK stays out of the core module's dependencies.
package benchmarks
