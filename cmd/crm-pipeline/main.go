// Command crm-pipeline runs the sales-pipeline stream processor and its tools:
//
//	crm-pipeline serve     processors + views + HTTP (embedded broker unless --brokers)
//	crm-pipeline broker    the embedded broker alone, for several serve instances
//	crm-pipeline emit      send commands (JSON lines) to the commands topic
//	crm-pipeline accounts put   publish a Customer 360 account record
//	crm-pipeline reset-analytics   rebuild the analytics table from the opportunity data
//
// The performance scenarios of BENCHMARKS.md are a binary of their own, cmd/crm-bench.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/crm-pipeline/crm-pipeline/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "crm-pipeline:", err)
		os.Exit(1)
	}
}

// run dispatches a subcommand; it is main without the process exit, for tests. A help that
// was asked for (--help) is a success.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, lf, err := parseServeTo(args[1:], stdout, stderr)
		if err != nil {
			return err
		}
		logger, err := lf.logger(stderr)
		if err != nil {
			return err
		}
		return app.Run(ctx, cfg, logger, stdout)
	case "broker":
		return runBroker(ctx, args[1:], stdout, stderr)
	case "emit":
		return runEmit(ctx, args[1:], stdin, stdout, stderr)
	case "accounts":
		if len(args) < 2 || args[1] != "put" {
			if len(args) == 2 && (args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
				return runAccountsPut(ctx, []string{"--help"}, stdout, stderr)
			}
			return fmt.Errorf("usage: crm-pipeline accounts put --id ID --name NAME [--segment S] [--region R] [--owner O] (see crm-pipeline accounts put --help)")
		}
		return runAccountsPut(ctx, args[2:], stdout, stderr)
	case "reset-analytics":
		return runResetAnalytics(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return nil
	}
	fmt.Fprint(stderr, usage())
	return fmt.Errorf("unknown command %q", args[0])
}
