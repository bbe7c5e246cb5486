// Command azcred works with Azure credentials from the command line.
//
//	azcred token       get a token with DefaultAzureCredential and print it
//	azcred doctor      ask every source of DefaultAzureCredential for a token and explain each answer
//	azcred emulator    run an offline tenant (Entra ID, managed-identity hosts, a proxy for login.microsoftonline.com) for programs in any language
//	azcred demo        get tokens from a built-in local Entra ID emulator and show them (no Azure needed)
//	azcred help        show this help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: azcred <command>

commands:
  token   get a token with DefaultAzureCredential and print it as JSON
          (or --output raw); see azcred token -h
  doctor  ask every source of DefaultAzureCredential for a token, one at a
          time, and print how each answered and what to do about failures;
          exit status 0 only if a source works
  emulator
          run an offline tenant stand-alone until interrupted: Entra ID,
          the managed-identity hosts, and a proxy that answers
          login.microsoftonline.com; writes one environment file per host
          (DIR/hosts/*.sh) that programs in any language use unchanged
  demo    start a local Entra ID emulator, get tokens from it with
          ClientSecretCredential and ClientCertificateCredential, and show
          what they contain (never the tokens themselves). No Azure needed.
  help    show this help
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process's exit code: 0 on
// success, 1 when the command failed, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "token":
		err = tokenCommand(ctx, args[1:], stdout, stderr)
	case "doctor":
		err = doctorCommand(ctx, args[1:], stdout, stderr)
	case "emulator":
		err = emulatorCommand(ctx, args[1:], stdout, stderr)
	case "demo":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "azcred demo takes no arguments (got %q)\n", args[1:])
			return 2
		}
		err = demo(ctx, stdout)
	case fakeAzCommand:
		return fakeAz(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "azcred: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if isUsage(err) {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "azcred %s: %v\n", args[0], err)
				return 2
			}
			return 0
		}
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "azcred: interrupted")
		} else {
			fmt.Fprintf(stderr, "azcred %s: %v\n", args[0], err)
		}
		return 1
	}
	return 0
}
