package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// runAccountsPut publishes one Customer 360 account record, as the Customer 360 service would;
// the next command on an opportunity of that account picks it up.
func runAccountsPut(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("accounts put", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	sec := addKafkaSecurityFlags(fs)
	var a domain.Account
	fs.StringVar(&a.ID, "id", "", "account id (required)")
	fs.StringVar(&a.Name, "name", "", "account name (required)")
	fs.StringVar(&a.Segment, "segment", "", "segment, e.g. enterprise")
	fs.StringVar(&a.Region, "region", "", "region, e.g. EMEA")
	fs.StringVar(&a.OwnerID, "owner", "", "account owner id")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if a.ID == "" || a.Name == "" {
		return fmt.Errorf("accounts put: --id and --name are required")
	}
	b, err := codecs.EncodeAccount(a)
	if err != nil {
		return fmt.Errorf("encode account: %w", err)
	}
	opts := topics.ClientOptions{Brokers: splitList(*brokers)}
	if err := sec.apply(&opts); err != nil {
		return err
	}
	p, err := topics.NewSyncProducer(opts)
	if err != nil {
		return err
	}
	defer p.Close()
	part, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Accounts, Key: sarama.StringEncoder(a.ID), Value: sarama.ByteEncoder(b)})
	if err != nil {
		return fmt.Errorf("publish account %s: %w", a.ID, err)
	}
	fmt.Fprintf(stdout, "account %s published to %s partition %d offset %d\n", a.ID, topics.Accounts, part, off)
	return nil
}
