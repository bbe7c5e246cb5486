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
	Source string `json:"source"`
	// GetToken is what GetToken's walk does with the source: "asked",
	// "started early, not needed" or "not started"; NotStarted says why not.
	GetToken   string            `json:"getToken"`
	NotStarted string            `json:"notStartedReason,omitempty"`
	Outcome    string            `json:"outcome"`
	Millis     int64             `json:"durationMs"`
	Identity   map[string]string `json:"identity,omitempty"`
	Message    string            `json:"message,omitempty"`
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
		rows[i] = doctorRow{Source: a.Source, GetToken: a.Walk.String(), NotStarted: a.NotStartedReason,
			Outcome: a.Outcome.String(), Millis: a.Duration.Milliseconds(), Identity: a.Identity}
		if a.Err != nil {
			rows[i].Message = strings.TrimPrefix(a.Err.Error(), a.Source+": ")
		}
		if a.Detail != "" {
			rows[i].Message = a.Detail
		}
	}
	return rows
}

// printDoctorTable prints one line per source, what GetToken starts and
// why it leaves the others, then (with why) each message in full.
func printDoctorTable(w io.Writer, scope string, rows []doctorRow, why bool) {
	fmt.Fprintf(w, "DefaultAzureCredential sources for %s: what GetToken starts, and how each source answers when asked:\n\n", scope)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tGETTOKEN\tOUTCOME\tTIME\tIDENTITY")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Source, r.GetToken, r.Outcome, (time.Duration(r.Millis) * time.Millisecond).String(), identityText(r.Identity))
	}
	_ = tw.Flush()
	printWalk(w, rows)
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

// printWalk says which sources GetToken starts, and why it does not start
// the others, grouped by reason.
func printWalk(w io.Writer, rows []doctorRow) {
	var asked, early []string
	var reasons []string
	notStarted := map[string][]string{}
	for _, r := range rows {
		switch {
		case r.NotStarted != "":
			if _, ok := notStarted[r.NotStarted]; !ok {
				reasons = append(reasons, r.NotStarted)
			}
			notStarted[r.NotStarted] = append(notStarted[r.NotStarted], r.Source)
		case r.GetToken == "asked":
			asked = append(asked, r.Source)
		default:
			early = append(early, r.Source)
		}
	}
	fmt.Fprintf(w, "\nGetToken starts %s", listText(asked))
	if len(early) > 0 {
		fmt.Fprintf(w, "; while IMDS is probed it also starts %s, whose answer is not needed", listText(early))
	}
	fmt.Fprintln(w, ".")
	for _, reason := range reasons {
		fmt.Fprintf(w, "Not started: %s (%s).\n", strings.Join(notStarted[reason], ", "), reason)
	}
}

func listText(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}
