// Package azurevm tells, from the machine's firmware and without any network
// request, whether a program may be running on an Azure virtual machine, so
// that DefaultAzureCredential need not wait for the Instance Metadata
// Service on machines that cannot have one.
//
// Every Azure virtual machine runs on Hyper-V and its firmware names
// "Microsoft Corporation" as the system manufacturer (Azure VMs also carry
// the chassis asset tag [AzureAssetTag]). A machine whose firmware names
// another manufacturer (a laptop, a workstation, a VM on another cloud or
// hypervisor) is not an Azure VM. Hyper-V on a laptop also says Microsoft,
// so only a readable manufacturer that is not Microsoft counts as evidence;
// no firmware data, or data that cannot be read, is no evidence.
//
// Where the facts come from:
//   - Linux: /sys/class/dmi/id/sys_vendor and chassis_asset_tag (SMBIOS,
//     readable without privileges).
//   - Windows: the SMBIOS values Windows copies into the registry key
//     HKLM\HARDWARE\DESCRIPTION\System\BIOS (SystemManufacturer).
//   - macOS: Azure offers no macOS virtual machines (its VM images are
//     Linux and Windows; Apple's licence allows macOS virtual machines only
//     on Apple hardware, which Azure's Hyper-V hosts are not), so a macOS
//     machine is never an Azure VM with IMDS. Managed identity on a Mac
//     connected with Azure Arc does not use IMDS and is not affected.
//   - Other systems: no evidence.
package azurevm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// AzureAssetTag is the chassis asset tag of Azure virtual machines.
const AzureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// DMIRoot is the folder of the Linux kernel's SMBIOS (DMI) attributes that
// [Read] uses on Linux. It is a variable only so that tests and benchmarks
// can point it at a folder of their own; nothing else changes it.
var DMIRoot = "/sys/class/dmi/id"

// microsoft is the system manufacturer of every Hyper-V machine, Azure's
// included.
const microsoft = "Microsoft Corporation"

// Firmware is what the machine's firmware says about it.
type Firmware struct {
	// Vendor is the system manufacturer, such as "LENOVO"; "" when unknown.
	Vendor string
	// AssetTag is the chassis asset tag; "" when unknown.
	AssetTag string
	// From says where the facts were read, for messages.
	From string
	// Err says why the manufacturer could not be read; nil when it was.
	Err error
}

// NotAzureVM reports whether the firmware is positive evidence that this
// machine is not an Azure VM: a manufacturer was read and it is not
// Microsoft.
func (f Firmware) NotAzureVM() bool {
	v := strings.TrimSpace(f.Vendor)
	return f.Err == nil && v != "" && !strings.EqualFold(v, microsoft)
}

// AzureVM reports whether the firmware looks like an Azure VM's: Microsoft
// with Azure's asset tag. It is informational; Hyper-V elsewhere says
// Microsoft too.
func (f Firmware) AzureVM() bool {
	return f.Err == nil && strings.EqualFold(strings.TrimSpace(f.Vendor), microsoft) && strings.TrimSpace(f.AssetTag) == AzureAssetTag
}

// Read returns what this machine's firmware says. It reads a few small
// local files or registry values; it never fails, Err says what could not
// be read.
func Read() Firmware { return read() }

// ReadDMI reads the Linux kernel's SMBIOS attributes from root, a folder
// laid out as /sys/class/dmi/id (sys_vendor, chassis_asset_tag). Read uses
// it on Linux; tests give it a folder of their own.
func ReadDMI(root string) Firmware {
	f := Firmware{From: filepath.Join(root, "sys_vendor")}
	b, err := os.ReadFile(f.From)
	if err != nil {
		f.Err = err
		return f
	}
	f.Vendor = strings.TrimSpace(string(b))
	if f.Vendor == "" {
		f.Err = errors.New("the firmware names no system manufacturer")
	}
	if tag, err := os.ReadFile(filepath.Join(root, "chassis_asset_tag")); err == nil {
		f.AssetTag = strings.TrimSpace(string(tag))
	}
	return f
}
