package cli

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func validate(_ context.Context, args []string, env Env) error {
	fs := flags("validate", env)
	account := fs.String("account", env.Getenv("AUTODEPLOY_ACCOUNT"), "central account, to check one owner per container as the functions will (default $AUTODEPLOY_ACCOUNT)")
	region := fs.String("region", cmp.Or(env.Getenv("AWS_REGION"), env.Getenv("AWS_DEFAULT_REGION")), "central region, likewise (default $AWS_REGION)")
	output := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	asJSON, err := checkOutput(*output)
	if err != nil {
		return err
	}
	file := cmp.Or(fs.Arg(0), "autodeploy.yaml")
	cfg, err := rules.Load(file)
	if err != nil {
		return err
	}
	// The functions check it again with targets resolved against where they
	// run: a target naming the central region and one leaving it out are one
	// service. Checked here with what is known, no AWS call.
	if err := cfg.CheckOwners(rules.Place{Account: *account, Region: *region}); err != nil {
		return err
	}
	out := validateOutput(file, cfg)
	if *account != "" && *region != "" {
		out.OwnersCheckedWith = &Place{Account: *account, Region: *region}
	}
	if asJSON {
		return writeJSON(env.Stdout, out)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tREPOSITORY\tSELECTS\tORDER\tPIN\tTARGET\tCODEDEPLOY\tPROMOTE\tREGISTRY\tPUBLISH\tGATES")
	for _, r := range out.Rules {
		for i, t := range r.Targets {
			target := t.Cluster + "/" + t.Service
			if len(t.Containers) > 0 {
				target += " [" + strings.Join(t.Containers, ",") + "]"
			}
			if t.Account != "" || t.Region != "" {
				target += " in " + strings.Trim(t.Account+" "+t.Region, " ")
			}
			if i > 0 {
				fmt.Fprintf(w, "\t\t\t\t\t%s\t%s\t\t\t\t\n", target, dash(t.CodeDeploy))
				continue
			}
			registry := "-"
			if r.Registry != nil {
				registry = strings.Trim(r.Registry.Account+" "+r.Registry.Region, " ")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Repository, cut(r.Selects, 40), r.Order, r.Pin,
				target, dash(t.CodeDeploy), dash(r.PromoteTag), registry, dash(r.PublishPrefix), gateWords(cfg, r.Name))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	which := "rules"
	if len(cfg.Rules) == 1 {
		which = "rule"
	}
	fmt.Fprintf(env.Stdout, "%s: %d %s, valid\n", file, len(cfg.Rules), which)
	if names := cfg.CleanupRules(); len(names) > 0 {
		var said []string
		for _, r := range cfg.Rules {
			if r.Cleanup == nil {
				continue
			}
			how := fmt.Sprintf("%s (keep %d", r.Name, r.Cleanup.Keep)
			if r.Cleanup.Delete {
				how += ", delete"
			}
			said = append(said, how+")")
		}
		which, verb := "rules", "deregister old revisions of their"
		if len(said) == 1 {
			which, verb = "rule", "deregisters old revisions of its"
		}
		fmt.Fprintf(env.Stdout, "clean-up: %s %s %s targets' families; autodeploy status shows what the next clean-up would\n",
			which, strings.Join(said, ", "), verb)
		fmt.Fprintln(env.Stdout, "clean-up: a service, scheduled task or state machine on those families that no rule names is protected only by keep")
	}
	for _, r := range cfg.Rules {
		if g := gatesOf(r); g != "" {
			fmt.Fprintf(env.Stdout, "gates: rule %s %s\n", r.Name, g)
		}
	}
	if *account == "" || *region == "" {
		fmt.Fprintln(env.Stdout, "one owner per container checked without the central account and region: give --account and --region (or AUTODEPLOY_ACCOUNT, AWS_REGION) to check it as the functions will")
	}
	return nil
}

// gatesOf says what rule r's gates make a digest wait for, "" for none.
func gatesOf(r *rules.Rule) string {
	var what []string
	if r.Scan != nil {
		what = append(what, fmt.Sprintf("deploys only a clean scan (blocks %s; waits %s for a result)", strings.Join(r.Scan.Block, ", "), rules.FormatDuration(r.Scan.Wait)))
	}
	if r.Approval != nil {
		what = append(what, fmt.Sprintf("waits for a person's approval (autodeploy approve; expires after %s)", rules.FormatDuration(r.Approval.Expires)))
	}
	if p := r.Promote; p != nil && p.Bake > 0 {
		alarms := make([]string, len(p.Alarms))
		for i, a := range p.Alarms {
			alarms[i] = a.String()
		}
		what = append(what, fmt.Sprintf("promotes to %s only after a %s bake with none of %s in ALARM", p.Tag, rules.FormatDuration(p.Bake), strings.Join(alarms, ", ")))
	}
	return strings.Join(what, "; then ")
}

// validateOutput is the file's rules, as validate shows them.
func validateOutput(file string, cfg *rules.Config) ValidateOutput {
	out := ValidateOutput{File: file, Valid: true, Rules: []ValidateRule{}}
	for _, r := range cfg.Rules {
		vr := ValidateRule{Name: r.Name, Repository: r.Repository, Selects: r.Selector(), Order: string(r.EffectiveOrder()),
			Pin: string(r.Pin), Gates: gatesOf(r)}
		if r.Registry != (rules.Place{}) {
			vr.Registry = &Place{Account: r.Registry.Account, Region: r.Registry.Region}
		}
		if r.Promote != nil {
			vr.PromoteTag = r.Promote.Tag
		}
		if r.Publish != nil {
			vr.PublishPrefix = r.Publish.SSMPrefix
		}
		if r.Cleanup != nil {
			vr.Cleanup = &ValidateCleanup{Keep: r.Cleanup.Keep, Delete: r.Cleanup.Delete}
		}
		for _, t := range r.Targets {
			vt := ValidateTarget{Cluster: t.Cluster, Service: t.Service, Containers: t.Containers, Account: t.Account, Region: t.Region}
			if c := t.CodeDeploy; c != nil {
				vt.CodeDeploy = "found by the service"
				if !c.Discovers() {
					vt.CodeDeploy = c.Application + "/" + c.DeploymentGroup
				}
			}
			vr.Targets = append(vr.Targets, vt)
		}
		out.Rules = append(out.Rules, vr)
	}
	return out
}

// gateWords is the table's short form of a rule's gates, in the order
// they act ("-" none); the lines after the table say them in full.
func gateWords(cfg *rules.Config, name string) string {
	var what []string
	for _, r := range cfg.Rules {
		if r.Name != name {
			continue
		}
		if r.Scan != nil {
			what = append(what, "scan")
		}
		if r.Approval != nil {
			what = append(what, "approval")
		}
		if p := r.Promote; p != nil && p.Bake > 0 {
			what = append(what, "bake "+rules.FormatDuration(p.Bake))
		}
	}
	return dash(strings.Join(what, ", "))
}

// cut shortens a value for a table cell, saying it did ("…"): a long
// tag-regex or reason must not push every other column off the screen.
// JSON output is never cut.
func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
