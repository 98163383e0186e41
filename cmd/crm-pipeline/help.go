package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
)

// subcommand is the help of one subcommand: what it is for and how it is typically called.
type subcommand struct {
	name, summary, description, example string
}

// subcommands are the subcommands in the order the usage lists them.
var subcommands = []subcommand{
	{
		name:    "serve",
		summary: "run the processors, views and HTTP API (embedded broker unless --brokers)",
		description: `Runs the service: the opportunity processor and the analytics aggregator (goka
processors in the consumer group crm-pipeline-cg), the local views and the HTTP API. Without
--brokers it starts an embedded Kafka broker whose log lives under --data/broker. Several
instances with the same --brokers and their own --data share the work as one consumer group.`,
		example: `crm-pipeline serve --data ./data --http 127.0.0.1:9402
crm-pipeline serve --brokers kafka-1:9092,kafka-2:9092 --data /var/lib/crm-pipeline --kafka-tls`,
	},
	{
		name:    "broker",
		summary: "run the embedded Kafka broker alone",
		description: `Runs the embedded broker (franz-go's kfake, the Kafka wire protocol, its log on disk under
--data/broker) without the service, so that several serve instances (--brokers) can share it
and a serve can be stopped or killed without the broker.`,
		example: `crm-pipeline broker --data ./broker-data --listen 127.0.0.1:9092
crm-pipeline serve --brokers 127.0.0.1:9092 --data ./data-1 --http 127.0.0.1:9402`,
	},
	{
		name:    "emit",
		summary: "send commands (JSON lines) from a file or stdin to --brokers",
		description: `Sends commands to crm.pipeline.opportunity.commands, one JSON object a line: the HTTP
body of the command plus "type" (CreateOpportunity, UpdateOpportunity, ChangeStage, CloseWon,
CloseLost, Reopen) and "opportunityId". It stops at the first bad line unless
--continue-on-error, and exits non-zero when any line failed.`,
		example: `echo '{"type":"ChangeStage","opportunityId":"opp-1","stageId":"proposal"}' | crm-pipeline emit --brokers 127.0.0.1:9092`,
	},
	{
		name:    "accounts put",
		summary: "publish a Customer 360 account record",
		description: `Publishes one account record to customer360.accounts, as the Customer 360 service would;
every opportunity of the account shows it at once.`,
		example: `crm-pipeline accounts put --brokers 127.0.0.1:9092 --id acc-1 --name "Acme Corp" --segment enterprise --region EMEA`,
	},
	{
		name:    "reset-analytics",
		summary: "rebuild the analytics table from the opportunity table and history (service stopped)",
		description: `Rebuilds crm-pipeline-analytics-table from the opportunity table and the history topic under
the current derivation rules, in the spirit of Kafka Streams' application reset tool: run it
with every serve stopped after an upgrade that changes how the reports are derived.`,
		example: `crm-pipeline reset-analytics --data ./data --dry-run
crm-pipeline reset-analytics --brokers kafka-1:9092`,
	},
	{
		name:    "version",
		summary: "print the version and commit of this binary",
		example: `crm-pipeline version`,
	},
}

// usage lists the subcommands.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: crm-pipeline <command> [flags]\n\ncommands:\n")
	for _, c := range subcommands {
		fmt.Fprintf(&b, "  %-16s %s\n", c.name, c.summary)
	}
	b.WriteString("\n`crm-pipeline <command> --help` describes a command and its flags; every flag can also come\nfrom the environment as CRM_PIPELINE_<FLAG> ('-' as '_').\n")
	return b.String()
}

// errHelp is what a subcommand returns after printing the help it was asked for: the process
// then exits 0.
var errHelp = errors.New("help requested")

// parseFlags parses a subcommand's flags, then fills the ones not given from CRM_PIPELINE_*.
// --help (or -h) prints the subcommand's description, example and flags to stdout and
// returns errHelp; a bad flag is reported on stderr with a pointer to --help.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeHelp(stdout, fs)
			return errHelp
		}
		return fmt.Errorf("%s: %w (see crm-pipeline %s --help)", fs.Name(), err, fs.Name())
	}
	return envFlags(fs)
}

// writeHelp prints fs's subcommand help.
func writeHelp(w io.Writer, fs *flag.FlagSet) {
	for _, c := range subcommands {
		if c.name != fs.Name() {
			continue
		}
		fmt.Fprintf(w, "crm-pipeline %s: %s\n\n", c.name, c.summary)
		if c.description != "" {
			fmt.Fprintf(w, "%s\n\n", c.description)
		}
		fmt.Fprintf(w, "example:\n")
		for line := range strings.SplitSeq(c.example, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "flags (each also from CRM_PIPELINE_<FLAG>):\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// version is the module version, the commit and the toolchain of this binary, from the build
// information the go command embeds.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "crm-pipeline (no build information)"
	}
	v := info.Main.Version
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	out := "crm-pipeline " + v
	if rev != "" {
		out += " (commit " + rev + modified
		if at != "" {
			out += ", " + at
		}
		out += ")"
	}
	return out + " " + info.GoVersion
}

// logFlags are --log-format and --log-level, shared by the subcommands that log.
type logFlags struct {
	format, level string
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.format, "log-format", "json", "log format: json (one JSON object a line, on stderr; stdout then carries JSON only) or text")
	fs.StringVar(&l.level, "log-level", "info", "lowest level logged: debug (every HTTP request), info, warn or error")
	return l
}

// logger builds the logger the flags ask for, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", l.format)
}

// stdoutIsJSON reports whether stdout must carry JSON only.
func (l *logFlags) stdoutIsJSON() bool { return l.format == "json" }
