package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/crm-pipeline/crm-pipeline/topics"
)

// envFlags fills every flag that was not given on the command line from the environment
// variable CRM_PIPELINE_<FLAG> (upper case, '-' as '_'), as API.md promises.
func envFlags(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := "CRM_PIPELINE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kafkaSecurity holds the Kafka connection security flags shared by every subcommand that
// talks to a broker.
type kafkaSecurity struct {
	tls      bool
	caFile   string
	insecure bool
	user     string
	password string
	// credentials is a file holding user and password (--kafka-sasl-credentials).
	credentials string
	// compression is not a security setting, but it is a client setting every Kafka-facing
	// subcommand shares.
	compression string
}

// addKafkaSecurityFlags registers --kafka-tls, --kafka-tls-ca, --kafka-sasl-user and
// --kafka-sasl-password (SCRAM-SHA-512), and --kafka-compression; like every flag they can come
// from CRM_PIPELINE_*.
func addKafkaSecurityFlags(fs *flag.FlagSet) *kafkaSecurity {
	k := &kafkaSecurity{}
	fs.BoolVar(&k.tls, "kafka-tls", false, "connect to the brokers over TLS")
	fs.StringVar(&k.caFile, "kafka-tls-ca", "", "PEM file of the CA that signed the brokers' certificates (implies --kafka-tls; default: system roots)")
	fs.StringVar(&k.user, "kafka-sasl-user", "", "SASL/SCRAM-SHA-512 user name")
	fs.StringVar(&k.password, "kafka-sasl-password", "", "SASL/SCRAM-SHA-512 password (prefer the env var CRM_PIPELINE_KAFKA_SASL_PASSWORD)")
	fs.StringVar(&k.credentials, "kafka-sasl-credentials", "", "file with a line '<user> <password>' for SASL/SCRAM-SHA-512, such as <data>/broker/sasl-credentials of an embedded broker with tokens")
	fs.StringVar(&k.compression, "kafka-compression", "none", "compression of produced record batches: none, gzip, snappy, lz4 or zstd")
	return k
}

// apply fills the security and compression part of o.
func (k *kafkaSecurity) apply(o *topics.ClientOptions) error {
	codec, err := topics.ParseCompression(k.compression)
	if err != nil {
		return fmt.Errorf("--kafka-compression: %w", err)
	}
	o.Compression = codec
	if k.credentials != "" {
		if k.user != "" {
			return fmt.Errorf("--kafka-sasl-credentials and --kafka-sasl-user exclude each other")
		}
		c, err := topics.LoadCredentials(k.credentials)
		if err != nil {
			return fmt.Errorf("--kafka-sasl-credentials: %w", err)
		}
		k.user, k.password = c.User, c.Password
	}
	if k.user != "" {
		if k.password == "" {
			return fmt.Errorf("--kafka-sasl-user needs --kafka-sasl-password")
		}
		o.SASLUser, o.SASLPassword = k.user, k.password
	}
	if k.tls || k.caFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if k.caFile != "" {
			pem, err := os.ReadFile(k.caFile)
			if err != nil {
				return fmt.Errorf("--kafka-tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("--kafka-tls-ca %s: no PEM certificate found", k.caFile)
			}
			cfg.RootCAs = pool
		}
		o.TLS = cfg
	}
	return nil
}
