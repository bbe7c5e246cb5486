package azcred

import (
	"log/slog"

	"github.com/azcred/azcred/internal/msi"
)

// The speculation rule of DefaultAzureCredential. Each source declares, when
// it is constructed, what deciding it costs (chainCost); the chain's walk
// reads the declarations and nothing else about a source (no list of names):
//
//   - A source is started when every earlier source has answered
//     unavailable: the walk in order.
//   - It may be started early only while every earlier source is either
//     unavailable or a network probe that has said it is waiting on the
//     network (probewait), and at least one is such a probe. So a later
//     source never runs while an earlier one is configured (costDecided) or
//     is a process that has not answered yet: developer tools run one at a
//     time, in order, the next only after the previous answered
//     unavailable, overlapping only with the IMDS wait.
//   - A source that declares nothing (a caller's own credential,
//     interactive sign-in) is never started early.
//
// A server whose environment configures a source therefore starts nothing
// else, and a laptop pays about max(IMDS probe, first signed-in tool).

// sourceCost is what deciding a source costs.
type sourceCost int

const (
	// costUnknown: the source declares nothing. Started in order only.
	costUnknown sourceCost = iota
	// costAbsent: a placeholder for a source that is not set up here; it
	// answers unavailable at once, without I/O.
	costAbsent
	// costDecided: decided by configuration. The environment selects the
	// source, so its answer, a token or a failure, is the chain's; nothing
	// after it is started while it has not answered. A source may also
	// declare it when it already holds what it needs, such as a token found
	// in a persistent cache.
	costDecided
	// costProbe: needs a network probe (IMDS). On a machine without the
	// endpoint it may take up to its probe timeout; it calls the probewait
	// hook of its context when it starts waiting on the network.
	costProbe
	// costProcess: needs a process (a developer tool).
	costProcess
)

// String names the cost (in test failures and when debugging the walk).
func (c sourceCost) String() string {
	switch c {
	case costAbsent:
		return "absent"
	case costDecided:
		return "decided by configuration"
	case costProbe:
		return "needs a network probe"
	case costProcess:
		return "needs a process"
	}
	return "undeclared"
}

// costDeclarer is implemented by the sources that declare their cost. The
// chain asks at the start of every walk, so a declaration may change over a
// source's life (managed identity on IMDS is decided once IMDS has
// answered).
type costDeclarer interface{ chainCost() sourceCost }

// costOf returns what cred declares, or costUnknown.
func costOf(cred TokenCredential) sourceCost {
	if d, ok := cred.(costDeclarer); ok {
		return d.chainCost()
	}
	return costUnknown
}

// EnvironmentCredential exists only when the environment configures it.
func (c *EnvironmentCredential) chainCost() sourceCost { return costDecided }

// WorkloadIdentityCredential exists only when its client ID, tenant and
// token file are configured.
func (c *WorkloadIdentityCredential) chainCost() sourceCost { return costDecided }

// ManagedIdentityCredential: a host that its environment selects (App
// Service, Arc, Service Fabric, Cloud Shell, Azure ML) decides it; IMDS
// needs a probe until it has answered once in chain mode.
func (c *ManagedIdentityCredential) chainCost() sourceCost {
	if c.client.Source() == msi.IMDS && c.client.Probing() {
		return costProbe
	}
	return costDecided
}

// The developer tools need a process.
func (c *AzureCLICredential) chainCost() sourceCost { return costProcess }

func (c *AzurePowerShellCredential) chainCost() sourceCost { return costProcess }

func (c *AzureDeveloperCLICredential) chainCost() sourceCost { return costProcess }

// A placeholder is absent when its source is not set up here, and decided
// when its configuration is broken: it fails, and the chain stops there.
func (u placeholderSource) chainCost() sourceCost {
	if isUnavailable(u.err) {
		return costAbsent
	}
	return costDecided
}

// levelInChain is the level of a source's own record about a token request:
// level on its own, Debug inside DefaultAzureCredential, where the chain
// logs the source it uses at Info and the sources whose answers it was not
// given to need log nothing above Debug. (The chain's error carries every
// needed source's reason.)
func levelInChain(inChain bool, level slog.Level) slog.Level {
	if inChain {
		return slog.LevelDebug
	}
	return level
}
