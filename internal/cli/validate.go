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
	if err := parse(fs, args); err != nil {
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
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tREPOSITORY\tSELECTS\tORDER\tPIN\tTARGET\tPROMOTE")
	for _, r := range cfg.Rules {
		for i, t := range r.Targets {
			target := t.Cluster + "/" + t.Service
			if len(t.Containers) > 0 {
				target += " [" + strings.Join(t.Containers, ",") + "]"
			}
			if t.Account != "" || t.Region != "" {
				target += " in " + strings.Trim(t.Account+" "+t.Region, " ")
			}
			if i == 0 {
				promote := "-"
				if r.Promote != nil {
					promote = r.Promote.Tag
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Repository, r.Selector(), r.EffectiveOrder(), r.Pin, target, promote)
			} else {
				fmt.Fprintf(w, "\t\t\t\t\t%s\t\n", target)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d rules, valid\n", file, len(cfg.Rules))
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
		which := "rules"
		if len(said) == 1 {
			which = "rule"
		}
		fmt.Fprintf(env.Stdout, "clean-up: %s %s deregister old revisions of their targets' families; autodeploy status shows what the next clean-up would\n",
			which, strings.Join(said, ", "))
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
