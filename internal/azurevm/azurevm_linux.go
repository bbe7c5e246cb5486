//go:build linux

package azurevm

func read() Firmware { return ReadDMI(DMIRoot) }
