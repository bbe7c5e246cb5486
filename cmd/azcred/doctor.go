package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/azcred/azcred"
)

// doctorRow is one source in `azcred doctor`'s report.
type doctorRow struct {
	Source   string            `json:"source"`
	Outcome  string            `json:"outcome"`
	Millis   int64             `json:"durationMs"`
	Identity map[string]string `json:"identity,omitempty"`
	Message  string            `json:"message,omitempty"`
}

// errNoSource makes doctor exit 1 after printing its report.
var errNoSource = errors.New("no source of the default chain gave a token")

// doctorCommand asks every source of the default chain for a token, one at a
// time, and prints how each answered.
func doctorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("azcred doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scope := fs.String("scope", defaultScope, "the scope to ask each source for")
	output := fs.String("output", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *output != "table" && *output != "json" {
		return usageError{fmt.Errorf("--output must be table or json, not %q", *output)}
	}
	cred, err := azcred.NewDefaultAzureCredential(nil)
	if err != nil {
		return err
	}
	rows := doctorRows(cred.Diagnose(ctx, azcred.TokenRequestOptions{Scopes: []string{*scope}}))
	if err := ctx.Err(); err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		printDoctorTable(stdout, *scope, rows, true)
	}
	if !slices.ContainsFunc(rows, func(r doctorRow) bool { return r.Outcome == "succeeded" }) {
		return errNoSource
	}
	return nil
}

func doctorRows(attempts []azcred.ChainAttempt) []doctorRow {
	rows := make([]doctorRow, len(attempts))
	for i, a := range attempts {
		rows[i] = doctorRow{Source: a.Source, Outcome: a.Outcome.String(), Millis: a.Duration.Milliseconds(), Identity: a.Identity}
		if a.Err != nil {
			rows[i].Message = strings.TrimPrefix(a.Err.Error(), a.Source+": ")
		}
	}
	return rows
}

// printDoctorTable prints one line per source, then (with why) each message
// in full.
func printDoctorTable(w io.Writer, scope string, rows []doctorRow, why bool) {
	fmt.Fprintf(w, "DefaultAzureCredential sources, asked one at a time for %s:\n\n", scope)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tOUTCOME\tTIME\tIDENTITY")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Source, r.Outcome, (time.Duration(r.Millis) * time.Millisecond).String(), identityText(r.Identity))
	}
	_ = tw.Flush()
	first := true
	for _, r := range rows {
		if r.Message == "" || !why {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nWhy, and what to do:")
			first = false
		}
		fmt.Fprintf(w, "  %s: %s\n", r.Source, strings.ReplaceAll(r.Message, "\n", "\n    "))
	}
	winner := slices.IndexFunc(rows, func(r doctorRow) bool { return r.Outcome != "unavailable" })
	switch {
	case winner < 0:
		fmt.Fprintln(w, "\nNo source is available: configure one of them (see the messages above).")
	case rows[winner].Outcome == "failed":
		fmt.Fprintf(w, "\nDefaultAzureCredential would stop at %s, which is configured but failed.\n", rows[winner].Source)
	default:
		fmt.Fprintf(w, "\nDefaultAzureCredential would use %s.\n", rows[winner].Source)
	}
}

// identityText shows the claims that name an identity, in a fixed order.
func identityText(id map[string]string) string {
	if len(id) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range []string{"upn", "preferred_username", "appid", "azp", "oid", "tid"} {
		v, ok := id[k]
		switch {
		case !ok, k == "preferred_username" && id["upn"] == v, k == "azp" && id["appid"] == v:
			continue // absent, or the same as the claim before it
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
