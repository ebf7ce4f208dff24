# threads.pl - perl with ithreads (each thread a copy of the interpreter) and a shared queue.
use strict;
use warnings;
use threads;
use Thread::Queue;

my $q = Thread::Queue->new();
my @t = map {
    my $id = $_;
    threads->create(sub {
        my %h;
        $h{$_} = $_ x 3 for 1 .. 5000;
        $q->enqueue(scalar(keys %h) + $id);
        return length(join ',', values %h);
    });
} 1 .. 4;
my @lens = map { $_->join() } @t;
$q->end();
my @got;
while (defined(my $x = $q->dequeue())) { push @got, $x }
print join(' ', sort { $a <=> $b } @got), ' ', join(' ', @lens), "\n";
warn "done\n";
exit 8;
