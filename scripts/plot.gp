# plot.gp - charts server RSS (MiB) against requests completed, leaky vs fixed, as a 1280x720 PNG readable on a projector.
#
# usage: gnuplot -e "csv='results/rss.csv'; out='results/rss.png'; term='pngcairo'; plot_title='...'" scripts/plot.gp
# csv rows are  run,elapsed_s,requests,rss_kb  (loadgen/run_load.sh); MiB = kB/1024, the unit of every screen of the lab.
# term is pngcairo when gnuplot has it (scripts/demo.sh checks), else png (libgd).

if (!exists("csv"))        csv = 'results/rss.csv'
if (!exists("out"))        out = 'results/rss.png'
if (!exists("term"))       term = 'pngcairo'
if (!exists("plot_title")) plot_title = 'Server memory while it serves requests'

if (term eq 'pngcairo') {
    set terminal pngcairo size 1280,720 noenhanced font 'DejaVu Sans,22' linewidth 2
} else {
    set terminal png size 1280,720 noenhanced font 'DejaVuSans,20' linewidth 2
}
set output out

set datafile separator ','
set datafile columnheaders            # first row is the CSV header
set title plot_title font ',26'
set xlabel 'requests completed'
set ylabel 'RSS (MiB)'
set key top left box opaque spacing 1.3
set grid lw 1
set border lw 1.5
set xrange [0:*]
set yrange [0:*]
set format x '%.0f'
set format y '%.0f'
set offsets 0, 0, graph 0.05, 0
set tics scale 1.5

# One series per run label; rows of the other run become NaN (skipped).
plot csv using 3:(strcol(1) eq 'leaky' ? $4/1024.0 : NaN) with lines lw 5 lc rgb '#d62728' title 'leaky server', \
     csv using 3:(strcol(1) eq 'fixed' ? $4/1024.0 : NaN) with lines lw 5 lc rgb '#1f77b4' title 'fixed server'
