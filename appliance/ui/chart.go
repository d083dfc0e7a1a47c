package ui

import (
	"fmt"
	"time"

	"github.com/amtedge/amtedge/appliance/inventory"
)

// chart is the dashboard's activations-per-hour bar chart over the last 24 clock hours, drawn by the template as
// inline SVG from these numbers only (no markup is built here).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int // the tallest bar's count (the y scale)
	OK, Failed    int // totals over the 24 hours
	Labels        []axisLabel
}

type bar struct {
	X, W       int
	OKY, OKH   int // succeeded part, at the bottom
	BadY, BadH int // failed part, stacked on top
	Title      string
}

type axisLabel struct {
	X    int
	Text string
}

const (
	chartHours  = 24
	chartWidth  = 480
	chartHeight = 120
	chartBottom = 104 // the bars' baseline; the hour labels sit below it
)

// activationChart counts activation sessions by the hour they ended, succeeded and failed apart.
func activationChart(records []inventory.Record, now time.Time) chart {
	start := now.UTC().Truncate(time.Hour).Add(-(chartHours - 1) * time.Hour)
	var ok, bad [chartHours]int
	c := chart{Width: chartWidth, Height: chartHeight}
	for _, r := range records {
		if r.Verb != "activate" {
			continue
		}
		t := r.Ended
		if t.IsZero() {
			t = r.Started
		}
		i := int(t.Sub(start) / time.Hour)
		if t.Before(start) || i < 0 || i >= chartHours {
			continue
		}
		if r.Success {
			ok[i]++
			c.OK++
		} else {
			bad[i]++
			c.Failed++
		}
	}
	for i := range chartHours {
		c.Max = max(c.Max, ok[i]+bad[i])
	}
	slot := chartWidth / chartHours
	for i := range chartHours {
		b := bar{X: i*slot + 2, W: slot - 4}
		hour := start.Add(time.Duration(i) * time.Hour)
		b.Title = fmt.Sprintf("%s–%s UTC: %d succeeded, %d failed", hour.Format("15:04"), hour.Add(time.Hour).Format("15:04"), ok[i], bad[i])
		if c.Max > 0 {
			b.OKH = ok[i] * (chartBottom - 4) / c.Max
			b.BadH = bad[i] * (chartBottom - 4) / c.Max
		}
		b.OKY = chartBottom - b.OKH
		b.BadY = b.OKY - b.BadH
		c.Bars = append(c.Bars, b)
		if i%6 == 0 || i == chartHours-1 {
			c.Labels = append(c.Labels, axisLabel{X: i*slot + slot/2, Text: hour.Format("15h")})
		}
	}
	return c
}
