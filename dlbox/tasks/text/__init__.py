"""Text: Wikipedia dump -> clean corpus -> word2vec."""
