package testkit

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics reads the /metrics exposition of the service whose HTTP listener is httpAddr
// (host:port) and returns every sample of the metric family name by its label text: "" for the
// sample without labels, else "{...}". It fails when /metrics does not answer or a sample does
// not parse, and leaves it to the caller whether that fails the test: a poll takes it as "not
// yet".
func Metrics(httpAddr, name string) (map[string]float64, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		out[line[len(name):i]] = v
	}
	return out, nil
}

// MetricSum adds up the samples Metrics returns (every label set of the family) and counts them.
func MetricSum(httpAddr, name string) (sum float64, series int, err error) {
	m, err := Metrics(httpAddr, name)
	for _, v := range m {
		sum += v
	}
	return sum, len(m), err
}
