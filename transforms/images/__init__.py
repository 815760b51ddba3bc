"""Building blocks of the image-caption job (``pipelines/images.py``), one concept per file.

Readers: ``tables`` (URL + caption tables), ``webdataset`` (tars), ``html_alt`` (``<img alt>``
pairs from crawled WARC pages), ``read`` (``ReadCaptionInputs``). Caption filters:
``caption_length``, ``caption_boilerplate``, ``caption_language``; ``url_dedup``. Then
``download`` (through ``transforms.crawl``), ``decode`` (limits, orientation, resize, re-encode,
metadata; pure image code in ``normalise``), ``placeholder``, ``image_filter``, ``nsfw``,
``dedup`` (exact by sha256, near by pHash bands). ``stages`` lists them in pipeline order.
"""
