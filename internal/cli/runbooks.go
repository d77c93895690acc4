package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/runbook"
)

// runCmd starts a document and follows it to the end.
func runCmd(e *env) *cobra.Command {
	var params []string
	var detach bool
	cmd := &cobra.Command{
		Use:   "run DOCUMENT [--param NAME=VALUE]... [--detach]",
		Short: "Run a runbook document and stream its progress",
		Long: `Run a document (built-in, or from the controller's documents directory) with
parameters, and print each step as it starts and ends. Exits 0 when the
execution succeeds, 1 when it fails, is cancelled or times out. With --detach,
prints the execution id and returns at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := wire.RunRequest{Document: args[0], Parameters: map[string]string{}}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return &exitError{ExitConfig, fmt.Errorf("--param %q: want NAME=VALUE", p)}
				}
				req.Parameters[k] = v
			}
			c := e.client()
			id, err := c.Run(cmd.Context(), req)
			if err != nil {
				return err
			}
			if detach {
				if e.json() {
					return e.printJSON(wire.RunResponse{ID: id})
				}
				fmt.Fprintln(e.stdout, id)
				return nil
			}
			return follow(cmd.Context(), e, c, id)
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "a document parameter, NAME=VALUE (repeatable; a StringList as a,b,c or a JSON array)")
	cmd.Flags().BoolVar(&detach, "detach", false, "print the execution id and return without waiting")
	return cmd
}

// followWait is how long one wait for an execution's change lasts before
// the client asks again.
const followWait = 30 * time.Second

// follow prints an execution's step transitions until it ends, woken by
// the controller at each change (no polling).
func follow(ctx context.Context, e *env, c *api.Client, id string) error {
	if !e.json() {
		fmt.Fprintf(e.stdout, "execution %s\n", id)
	}
	seen := map[string]string{}
	etag := ""
	for {
		ex, tag, changed, err := c.WaitExecution(ctx, id, etag, followWait)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		etag = tag
		if !e.json() {
			printSteps(e, ex, seen)
		}
		if wire.Ended(ex.Status) {
			return finished(e, id, ex)
		}
	}
}

// printSteps prints the steps whose status or attempt changed since seen.
func printSteps(e *env, ex wire.Execution, seen map[string]string) {
	for _, s := range ex.Steps {
		key := s.Status + "/" + fmt.Sprint(s.Attempts)
		if seen[s.Name] == key || s.Status == wire.StatusPending {
			continue
		}
		seen[s.Name] = key
		line := fmt.Sprintf("  %-28s %-10s %s", s.Name, s.Status, s.Action)
		if s.Attempts > 1 {
			line += fmt.Sprintf(" (attempt %d)", s.Attempts)
		}
		if s.Child != "" {
			line += " -> " + s.Child
		}
		if s.Error != "" {
			line += ": " + s.Error
		}
		fmt.Fprintln(e.stdout, line)
	}
}

// finished reports an ended execution; it is an error unless it
// succeeded.
func finished(e *env, id string, ex wire.Execution) error {
	if e.json() {
		e.printJSON(ex)
	} else {
		msg := fmt.Sprintf("%s %s", ex.Status, ex.Document)
		if ex.EndedAt != nil {
			msg += " in " + ex.EndedAt.Sub(ex.StartedAt).Round(time.Millisecond).String()
		}
		if ex.Error != "" {
			msg += ": " + ex.Error
		}
		fmt.Fprintln(e.stdout, msg)
	}
	if ex.Status != wire.StatusSuccess {
		return &exitError{ExitError, fmt.Errorf("execution %s %s", id, strings.ToLower(ex.Status))}
	}
	return nil
}

func executionsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "executions",
		Short: "List, show, cancel and approve runbook executions",
	}
	cmd.AddCommand(executionsListCmd(e), executionsShowCmd(e), executionsCancelCmd(e), executionsApproveCmd(e))
	return cmd
}

func executionsListCmd(e *env) *cobra.Command {
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the newest executions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exs, err := e.client().Executions(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(exs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXECUTION\tDOCUMENT\tSTATUS\tSTEP\tSTARTED\tORIGIN")
			for _, x := range exs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Document, x.Status, dash(x.Current),
					x.StartedAt.Local().Format(time.DateTime), dash(x.Origin))
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVarP(&limit, "limit", "n", 20, "how many")
	return list
}

func executionsShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an execution: its steps with status, attempts, outputs and errors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			x, err := e.client().Execution(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(x)
			}
			fmt.Fprintf(e.stdout, "execution %s of %s: %s", x.ID, x.Document, x.Status)
			if x.Error != "" {
				fmt.Fprintf(e.stdout, ": %s", x.Error)
			}
			fmt.Fprintf(e.stdout, "\nparameters: %v\n", x.Parameters)
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tACTION\tSTATUS\tATTEMPTS\tTOOK\tOUTPUTS / ERROR")
			for _, s := range x.Steps {
				took := "-"
				if s.StartedAt != nil && s.EndedAt != nil {
					took = s.EndedAt.Sub(*s.StartedAt).Round(time.Millisecond).String()
				}
				detail := ""
				if len(s.Outputs) > 0 {
					detail = fmt.Sprint(s.Outputs)
				}
				if s.Child != "" {
					detail = strings.TrimSpace(detail + " nested " + s.Child)
				}
				if s.Error != "" {
					detail = strings.TrimSpace(detail + " " + s.Error)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Action, s.Status, s.Attempts, took, detail)
			}
			return tw.Flush()
		},
	}
}

func executionsCancelCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a running execution",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().CancelExecution(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "execution %s: cancelling\n", args[0])
			return nil
		},
	}
}

func executionsApproveCmd(e *env) *cobra.Command {
	var reject bool
	var comment, approver string
	approve := &cobra.Command{
		Use:   "approve ID [--reject] [--comment TEXT]",
		Short: "Answer the approve step an execution waits at",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if approver == "" {
				approver = os.Getenv("USER")
			}
			if err := e.client().ApproveExecution(cmd.Context(), args[0], wire.ApproveRequest{Approver: approver, Reject: reject, Comment: comment}); err != nil {
				return err
			}
			verb := "approved"
			if reject {
				verb = "rejected"
			}
			fmt.Fprintf(e.stdout, "execution %s: %s\n", args[0], verb)
			return nil
		},
	}
	approve.Flags().BoolVar(&reject, "reject", false, "reject instead of approving")
	approve.Flags().StringVar(&comment, "comment", "", "a comment kept with the answer")
	approve.Flags().StringVar(&approver, "approver", "", "who answers (default $USER)")
	return approve
}

func documentsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "documents",
		Short: "List, show and validate runbook documents",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the built-in documents and those in the documents directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			docs, err := e.client().Documents(cmd.Context())
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(docs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DOCUMENT\tSOURCE\tDESCRIPTION")
			for _, d := range docs {
				src := d.Source
				if d.BuiltIn {
					src = "built-in"
				}
				desc := d.Description
				if d.Error != "" {
					desc = "INVALID: " + d.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, src, desc)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a document (as JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().Document(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, d, "", "  "); err != nil {
				return fmt.Errorf("document %s: %w", args[0], err)
			}
			buf.WriteByte('\n')
			_, err = buf.WriteTo(e.stdout)
			return err
		},
	}
	validate := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate document files; exit 2 and FILE:LINE:COL: message for each problem",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := false
			for _, path := range args {
				data, err := runbook.ReadFile(path)
				if err == nil {
					_, err = runbook.Parse(path, data)
				}
				if err != nil {
					bad = true
					fmt.Fprintln(e.stderr, strings.TrimRight(err.Error(), "\n"))
					continue
				}
				fmt.Fprintf(e.stdout, "%s: valid\n", path)
			}
			if bad {
				return &exitError{ExitConfig, errors.New("invalid documents")}
			}
			return nil
		},
	}
	cmd.AddCommand(list, show, validate)
	return cmd
}
