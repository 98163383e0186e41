package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// maxEmitLine is the longest line emit reads. A command is far smaller (query and domain bound
// every text member), so a longer line is a wrong file rather than a big command.
const maxEmitLine = 1 << 20

// emitLine is one line read by emit's reader goroutine, or the error that ended the reading.
type emitLine struct {
	no   int
	text []byte
	err  error
}

// runEmit sends commands, one JSON object a line (the HTTP body of the command's endpoint plus
// "type" and "opportunityId", see query.CommandFromJSON), from --file or stdin to the commands
// topic, keyed by opportunity id with Kafka's default partitioning, exactly as the HTTP gateway
// and upstream services write them. Blank lines and lines starting with '#' are skipped.
//
// It prints one "sent ..." line per command and a final "N sent, M failed". By default it
// stops at the first line that cannot be decoded, validated or sent, since the lines after it
// often depend on it (an update of an opportunity whose create failed); with
// --continue-on-error it reports such lines on stderr and goes on. Either way it returns an
// error when any line failed, so scripts see a non-zero exit.
func runEmit(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("emit", flag.ContinueOnError)
	brokersFlag := fs.String("brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	file := fs.String("file", "-", `file of JSON lines, one command a line; "-" reads stdin`)
	keepGoing := fs.Bool("continue-on-error", false, "report bad lines on stderr and go on instead of stopping at the first")
	sec := addKafkaSecurityFlags(fs)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("emit: unexpected arguments %q (give the input with --file)", fs.Args())
	}
	brokers := splitList(*brokersFlag)
	if len(brokers) == 0 {
		return errors.New("emit: --brokers is empty")
	}
	opts := topics.ClientOptions{Brokers: brokers}
	if err := sec.apply(&opts); err != nil {
		return fmt.Errorf("emit: %w", err)
	}

	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("emit: open input: %w", err)
		}
		defer f.Close()
		in = f
	}
	if in == nil {
		return errors.New("emit: no standard input; give --file")
	}

	// The producer connects on the first valid command, so a file whose lines are all bad is
	// reported without a reachable broker.
	var producer sarama.SyncProducer
	defer func() {
		if producer != nil {
			if cerr := producer.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("emit: close producer: %w", cerr))
			}
		}
	}()

	done := make(chan struct{})
	defer close(done)
	lines := readEmitLines(in, done)

	sent, failed := 0, 0
	summary := func() { fmt.Fprintf(stdout, "%d sent, %d failed\n", sent, failed) }
	for {
		var l emitLine
		var ok bool
		select {
		case <-ctx.Done():
			summary()
			return fmt.Errorf("emit: stopped after %d sent, %d failed: %w", sent, failed, ctx.Err())
		case l, ok = <-lines:
		}
		if !ok {
			break
		}
		if l.err != nil {
			// The reader cannot go on past an unreadable or oversize line.
			failed++
			summary()
			return fmt.Errorf("emit: line %d: %w", l.no, l.err)
		}
		text := bytes.TrimSpace(l.text)
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		cmd, value, lerr := prepareCommand(l.text)
		if lerr == nil && producer == nil {
			if producer, err = topics.NewSyncProducer(opts); err != nil {
				summary()
				return fmt.Errorf("emit: %w", err)
			}
		}
		var res string
		if lerr == nil {
			res, lerr = sendCommand(producer, cmd, value)
		}
		if lerr != nil {
			failed++
			lerr = fmt.Errorf("line %d: %w", l.no, lerr)
			if !*keepGoing {
				summary()
				return fmt.Errorf("emit: %w", lerr)
			}
			fmt.Fprintf(stderr, "crm-pipeline emit: %v\n", lerr)
			continue
		}
		sent++
		fmt.Fprintln(stdout, res)
	}
	summary()
	if failed > 0 {
		return fmt.Errorf("emit: %d of %d commands failed", failed, sent+failed)
	}
	return nil
}

// prepareCommand decodes and encodes one command line. The length check completes the
// scanner's, whose buffer also holds the line ending.
func prepareCommand(line []byte) (domain.Command, []byte, error) {
	if len(line) > maxEmitLine {
		return domain.Command{}, nil, fmt.Errorf("longer than %d bytes", maxEmitLine)
	}
	cmd, err := query.CommandFromJSON(bytes.TrimSpace(line), time.Now, nil)
	if err != nil {
		return domain.Command{}, nil, err
	}
	value, err := codecs.EncodeCommand(cmd)
	if err != nil {
		return domain.Command{}, nil, fmt.Errorf("encode %s command %s: %w", cmd.Type, cmd.CommandID, err)
	}
	return cmd, value, nil
}

// sendCommand produces one encoded command to the commands topic, keyed by its opportunity id,
// and returns its "sent ..." report.
func sendCommand(producer sarama.SyncProducer, cmd domain.Command, value []byte) (string, error) {
	part, off, err := producer.SendMessage(&sarama.ProducerMessage{
		Topic: topics.Commands,
		Key:   sarama.StringEncoder(cmd.OpportunityID),
		Value: sarama.ByteEncoder(value),
	})
	if err != nil {
		return "", fmt.Errorf("send %s command %s to %s: %w", cmd.Type, cmd.CommandID, topics.Commands, err)
	}
	return fmt.Sprintf("sent %s %s commandId=%s partition=%d offset=%d",
		cmd.Type, cmd.OpportunityID, cmd.CommandID, part, off), nil
}

// readEmitLines reads in line by line on its own goroutine, so that an interrupt stops emit
// even while it waits on a terminal or a pipe that sends nothing. The goroutine ends at the end
// of the input or, once done is closed, at its next line; only a read that never returns keeps
// it, and emit runs once per process.
func readEmitLines(in io.Reader, done <-chan struct{}) <-chan emitLine {
	lines := make(chan emitLine)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		// The buffer must also hold the line's "\r\n" for a line of exactly maxEmitLine bytes.
		sc.Buffer(make([]byte, 0, 64*1024), maxEmitLine+2)
		no := 0
		send := func(l emitLine) bool {
			select {
			case lines <- l:
				return true
			case <-done:
				return false
			}
		}
		for sc.Scan() {
			no++
			if !send(emitLine{no: no, text: bytes.Clone(sc.Bytes())}) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("longer than %d bytes: %w", maxEmitLine, err)
			} else {
				err = fmt.Errorf("read input: %w", err)
			}
			send(emitLine{no: no + 1, err: err})
		}
	}()
	return lines
}
