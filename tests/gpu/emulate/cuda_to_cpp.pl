#!/usr/bin/env perl
# Rewrites a CUDA source (.cu/.cuh) into C++ that emu_cuda.h can compile:
#   kernel<<<grid, block[, smem[, stream]]>>>(args)  ->  emu_launch("kernel", kernel, grid, block, smem, stream)(args)
#   extern __shared__ T name[];                     ->  T *name = (T *)emu_dynamic_shared;
#   __shared__ T a[..], b;                           ->  static thread_local T a[..], b; + poisoning of a and b
#   NULL                                             ->  nullptr (a launch's NULL argument stays a null
#                                                        pointer through emu_launch's forwarding; C++'s
#                                                        NULL is an integer there)
# Rewritten headers (.cuh) go beside the rewritten sources, which find them first.
# A launch whose <<< ... >>>( spans lines is joined onto its first line (blank lines
# follow it, so that the line numbers stay the source's).
# Usage: cuda_to_cpp.pl IN OUT.  Fails when a launch's >>>( is not within 4 lines of its <<<.
use strict;
use warnings;

my ($in, $out) = @ARGV;
die "usage: $0 IN OUT\n" unless defined $out;
open(my $fh, '<', $in) or die "$in: $!\n";
my @lines = <$fh>;
close $fh;
# Join each launch's lines up to its >>>( (comments left alone).
for (my $i = 0; $i < @lines; $i++) {
    next unless $lines[$i] =~ /<<</ && $lines[$i] !~ /^\s*(\/\/|\*|\/\*)/;
    my $joined = 0;
    while ($lines[$i] !~ />>>\(/ && $joined < 4 && $i + $joined + 1 < @lines) {
        $joined++;
        my $next = $lines[$i + $joined];
        $next =~ s/^\s+//;
        $lines[$i] =~ s/\s*\n$/ /;
        $lines[$i] .= $next;
        $lines[$i + $joined] = "\n";
    }
}
my $text = '';
my $n = 0;
for my $line (@lines) {
    $n++;
    if ($line =~ /<<</ && $line !~ /^\s*(\/\/|\*|\/\*)/) {
        $line =~ s/^(\s*)(\S.*?)<<<(.*)>>>\(/$1emu_launch("$2", $2, $3)(/
            or die "$in:$n: a launch whose <<< ... >>>( is not on one line\n";
    }
    $line =~ s/\bNULL\b/nullptr/g unless $line =~ /^\s*#/;
    $line =~ s/extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;/$1 *$2 = ($1 *)emu_dynamic_shared;/;
    if ($line =~ /^(\s*)__shared__\s+(\w+)\s+([^;]+);(.*)$/) {
        my ($indent, $type, $declarators, $rest) = ($1, $2, $3, $4);
        # split at the commas outside brackets
        my @names;
        my $depth = 0;
        my $current = '';
        for my $ch (split //, $declarators) {
            $depth++ if $ch eq '[';
            $depth-- if $ch eq ']';
            if ($ch eq ',' && $depth == 0) { push @names, $current; $current = ''; next; }
            $current .= $ch;
        }
        push @names, $current;
        my $poison = join(' ', map { /^\s*(\w+)/ or die "$in:$n: cannot read a __shared__ declaration\n";
                                     "emu_shared_poison(&$1, sizeof $1);" } @names);
        $line = "${indent}static thread_local $type $declarators; $poison$rest\n";
    }
    die "$in:$n: __shared__ in a form the rewriter does not know\n" if $line =~ /__shared__/ && $line !~ /^\s*(\/\/|\*|\/\*)/;
    $text .= $line;
}
open(my $oh, '>', "$out.tmp") or die "$out.tmp: $!\n";
print $oh "#line 1 \"$in\"\n", $text;
close $oh or die "$out.tmp: $!\n";
rename("$out.tmp", $out) or die "$out: $!\n";
