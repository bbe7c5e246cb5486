//go:build !linux && !windows && !darwin

package azurevm

import (
	"fmt"
	"runtime"
)

func read() Firmware {
	return Firmware{From: runtime.GOOS, Err: fmt.Errorf("azcred does not read the firmware on %s", runtime.GOOS)}
}
