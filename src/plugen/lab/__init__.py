"""The lab: experiments, the demo, the evaluation harness and side-by-side fitting.

It sits above the library (``plugen``'s core), the backbones zoo and the data sets, and may import
them; nothing below it imports the lab.
"""
