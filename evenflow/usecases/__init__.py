"""The stories, wired from the layers below: train, score, monitor, hand over, reproduce."""
